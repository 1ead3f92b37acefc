"""The local stand-in for capture's subscription filter and Firehose stream (modelfn/capture.py).

`modelfn serve` appends each function's output to `build/logs/<model>.log`; this reads the capture
records from those logs and writes them, one JSON object per line, to the keys a Firehose
delivery writes (`capture/<model>/<version>/YYYY/MM/DD/<batch>.jsonl`) in the local store, every
`interval_s` (Firehose buffers by time too) and once more when the deployment stops. Each log is
read from where the last delivery stopped, up to its last whole line, so a line the function is
still writing waits for the next delivery and nothing is delivered twice.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelfn.capture import batch_objects, records_in_lines
from modelfn.store import ArtifactStore
from tools.rollout import json_lines

DELIVERY_INTERVAL_S = 60.0  # Firehose's default buffering interval is 300 s; locally, sooner


class CaptureDelivery:
    def __init__(
        self, store: ArtifactStore, logs: list[Path], interval_s: float = DELIVERY_INTERVAL_S
    ) -> None:
        self.store = store
        # Only what is written from now on: an older run's lines were delivered by that run.
        self.offsets = {path: path.stat().st_size if path.is_file() else 0 for path in logs}
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def deliver(self) -> int:
        """Deliver every whole record line written since the last delivery; how many records."""
        with self._lock:
            lines: list[dict[str, Any]] = []
            for path, offset in self.offsets.items():
                if not path.is_file():
                    continue
                with path.open("rb") as fh:
                    fh.seek(offset)
                    data = fh.read()
                whole = data[: data.rfind(b"\n") + 1]
                self.offsets[path] = offset + len(whole)
                lines += json_lines(whole.decode("utf-8", errors="replace").splitlines())
            records = records_in_lines(lines)
            if not records:
                return 0
            batch = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
            for key, body in batch_objects(records, batch).items():
                self.store.put_bytes(key, body, if_none_match=True)
            return len(records)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="capture-delivery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the timer and deliver what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.deliver()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.deliver()
