"""One function process, measured from the outside: the unit of every cold start and warm figure.

    python bench/probe.py HANDLER EVENTS_JSON WARMUP REPEATS

HANDLER is `module:attribute` (functions.handler:handler, bench.peers.torch_lambda:handler);
importing it is the function's init phase. EVENTS_JSON holds payload-2.0 events: "first",
"batch1" and "batch16". The probe answers "first" and prints `first <status> <body>` at once:
the parent's clock, started when it spawned this process, stops at that line. With REPEATS > 0
it then sends WARMUP uncounted and REPEATS timed requests of each batch size through the
handler, times the bare onnxruntime `session.run` on the same graph inputs where the handler is
modelfn's (the compute floor), and prints one JSON line: durations in ms and the peak RSS.

Standard library only at the top: it runs on the Lambda-faithful path (python3.12 with only the
built layer and code asset on sys.path) as well as in the project's venv.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
import time
from typing import Any


class Context:
    """The parts of a Lambda context the handlers read."""

    function_name = "bench"
    aws_request_id = "bench"
    memory_limit_in_mb = 1024

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def call(handler: Any, event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = handler(event, Context())
    if response["statusCode"] != 200:
        raise SystemExit(
            f"probe: status {response['statusCode']}: {response.get('body', '')[:500]}"
        )
    return response


def floor_ms(module: Any, event: dict[str, Any], warmup: int, repeats: int) -> list[float] | None:
    """Bare `session.run` times on the graph inputs modelfn's adapter builds for `event`."""
    slot = getattr(getattr(getattr(module, "app", None), "state", None), "slot", None)
    if slot is None:
        return None
    loaded = slot.get()
    feeds: list[dict[str, Any]] = []

    def capture(feed: dict[str, Any]) -> dict[str, Any]:
        feeds.append(feed)
        result: dict[str, Any] = loaded.run(feed)
        return result

    body = json.loads(event["body"])
    loaded.task.predict(capture, body["inputs"], body.get("parameters", {}))
    times = []
    for i in range(warmup + repeats):
        started = time.perf_counter()
        for feed in feeds:
            loaded.session.run(None, feed)
        if i >= warmup:
            times.append((time.perf_counter() - started) * 1000)
    return times


def peak_rss_mb() -> float:
    """This process's peak resident memory, init included: VmHWM, its own address space's
    high-water mark. Not ru_maxrss: Linux carries the parent's peak across fork and exec into
    it (a probe spawned by a 830 MB bench process reported 830 MB whatever it held itself)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    # Elsewhere (no /proc): ru_maxrss, in KiB on Linux and bytes on macOS.
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def main() -> None:
    handler_ref, events_path, warmup, repeats = (
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]),
        int(sys.argv[4]),
    )
    with open(events_path, encoding="utf-8") as fh:
        events = json.load(fh)
    module_name, attribute = handler_ref.split(":")
    module = importlib.import_module(module_name)
    handler = getattr(module, attribute)
    first = call(handler, events["first"])
    print("first", first["statusCode"], first["body"], flush=True)
    result: dict[str, Any] = {"warmup": warmup}
    if repeats:
        for key in ("batch1", "batch16"):
            for _ in range(warmup):
                call(handler, events[key])
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                call(handler, events[key])
                times.append((time.perf_counter() - started) * 1000)
            result[key] = times
            floor = floor_ms(module, events[key], warmup, repeats)
            if floor is not None:
                result[f"floor_{key}"] = floor
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
