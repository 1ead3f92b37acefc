"""Sampled capture in the function: which requests are recorded, and the line that records them.

The contract (the record, where records go, why a log line) is modelfn/capture.py. Here:
- `sample(rate, raw)`: whether the request starting now is captured, drawn once per request by
  the telemetry middleware (functions/observability.py), which holds the draft on the request's
  record;
- while a sampled request runs, the task adapters add the features of the inputs they decoded
  (`capture_draft()`: they have the pixels and tokens in hand, so nothing is decoded twice) and
  the predict route adds the answers and, where `raw = true`, the inputs as sent (`note_raw`);
- `capture_line`: the record once the request is answered, which the middleware writes in the
  same stdout write as the request line.
An unsampled request pays one random draw; a sampled one its features and one more line: 0.03
to 0.43 ms through the handler, 2-6% of a warm request (`make bench-capture`; docs/serving.md).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pydantic_core
from pydantic import BaseModel

from modelfn.capture import CAPTURE_MESSAGE, MAX_RAW_BYTES

_draw = random.Random()


@dataclass
class CaptureDraft:
    """What a sampled request's record holds so far; filled in as the request runs."""

    raw_wanted: bool
    features: list[dict[str, float]] | None = None
    outputs: list[Any] | None = None
    raw: list[Any] | None = None
    raw_omitted: str | None = None


def sample(rate: float, raw: bool) -> CaptureDraft | None:
    """A draft for the request starting now with probability `rate`, else None."""
    if rate <= 0 or (rate < 1 and _draw.random() >= rate):
        return None
    return CaptureDraft(raw_wanted=raw)


def captured_output(output: Any) -> Any:
    """An answer as its record keeps it: a classifier's label and score (its top_k is the
    caller's choice, not the model's), another task's answer whole."""
    label, score = getattr(output, "label", None), getattr(output, "score", None)
    if isinstance(label, str) and isinstance(score, float):  # read, not dumped: 3 us for 16
        return {"label": label, "score": score}
    if isinstance(output, BaseModel):
        return output.model_dump(mode="json")
    return output


def note_raw(draft: CaptureDraft, inputs: list[Any]) -> None:
    """The inputs as sent, where the model's capture is raw and they fit one log event."""
    if not draft.raw_wanted:
        return
    size = len(pydantic_core.to_json(inputs))
    if size > MAX_RAW_BYTES:
        draft.raw_omitted = (
            f"the inputs are {size} bytes of JSON, over the {MAX_RAW_BYTES} a record holds"
        )
    else:
        draft.raw = inputs


def capture_line(
    draft: CaptureDraft,
    *,
    service: str,
    model: str,
    version: str,
    precision: str | None,
    route: str,
    status: int,
    latency_ms: float,
    request_id: str,
    trace_id: str | None,
) -> dict[str, Any]:
    """The record as the JSON object the function writes (modelfn.capture.CaptureRecord)."""
    line: dict[str, Any] = {
        "level": "INFO",
        "message": CAPTURE_MESSAGE,
        "service": service,
        "request_id": request_id,
        "trace_id": trace_id,
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "model": model,
        "version": version,
        "precision": precision,
        "route": route,
        "status": status,
        "latency_ms": round(latency_ms, 3),
        "features": draft.features or [],
        "outputs": draft.outputs,
    }
    if draft.raw is not None:
        line["raw"] = draft.raw
    if draft.raw_omitted is not None:
        line["raw_omitted"] = draft.raw_omitted
    return line
