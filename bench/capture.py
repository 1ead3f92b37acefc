"""What sampled capture costs a request, through the real Lambda handler, in one run (issue 23,
item 4).

    python -m bench.capture [--store DIR] [--alias ALIAS] [--models A,B] [--rounds N]
                            [--warmup N] [--repeats N] [--pairs N]

Per model, the same version is served by the zip function as bench/run.py runs it (python3.12
importing only the built code asset and dependency layer) with capture off and with every
request captured (MODELFN_CAPTURE_SAMPLE_RATE=1, the most a model can be set to), in ROUNDS
processes each, alternating, so a busy minute of the machine lands on both. Each figure is the
median over the rounds of a round's warm p50 (batch 1 and batch 16 of real test inputs).

The issue's target: capture adds no measurable latency. Across processes, measurable means
larger than the machine's own noise, taken in the same run as the spread (max - min) of the
capture-off rounds' p50s. On a shared machine a process's p50 moves more from one process to the
next than capture costs, so the bench also measures PAIRED, in one process: two apps of the same version, one capturing
every request and one not, answer the same event alternately, request by request, so both see
the same minute of the machine; the figure is the median of the per-pair differences, with a
95% bootstrap interval. Capture's cost is measurable where that interval excludes 0 (at a
sample rate of 1 it is: docs/serving.md, "Sampled capture", reads the figures). Everything goes
to build/bench-capture.json and is printed as tables.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import stats
from bench.run import commands, machine, model_events, probe
from modelfn.capture import SAMPLE_RATE_ENV
from modelfn.registry import REPO_ROOT, load_registry

OUT = REPO_ROOT / "build" / "bench-capture.json"
SETTINGS = {"off": "0", "on": "1"}


def measure(
    name: str, store: Path, alias: str, *, rounds: int, warmup: int, repeats: int
) -> dict[str, Any]:
    entry = load_registry().get(name)
    work = Path(tempfile.mkdtemp(prefix=f"bench-capture-{name}-"))
    try:
        events = work / "events.json"
        events.write_text(json.dumps(model_events(name, entry.task)))
        runs = {
            mode: commands(
                {
                    "MODELFN_MODEL": name,
                    "MODELFN_ALIAS": alias,
                    "MODELFN_STORE_URI": str(store),
                    # One cache for both: the same files, fetched once by the uncounted start.
                    "MODELFN_CACHE_DIR": str(work / "cache"),
                    SAMPLE_RATE_ENV: rate,
                },
                entry.serving.memory_mb,
            )["modelfn"]
            for mode, rate in SETTINGS.items()
        }
        probe(runs["off"], events, 0, 0)  # uncounted: the download and the page cache
        reports: dict[str, list[dict[str, Any]]] = {mode: [] for mode in SETTINGS}
        for round_ in range(rounds):
            for mode in SETTINGS if round_ % 2 == 0 else reversed(list(SETTINGS)):
                reports[mode].append(probe(runs[mode], events, warmup, repeats)[2])
            print(f"{name}: round {round_ + 1}/{rounds} done", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures: dict[str, Any] = {}
    for key in ("batch1", "batch16"):
        p50s = {m: [stats.percentile(r[key], 50) for r in reports[m]] for m in SETTINGS}
        off, on = (stats.percentile(p50s[m], 50) for m in SETTINGS)
        noise = max(p50s["off"]) - min(p50s["off"])
        figures[key] = {
            "off_p50_ms": off,
            "on_p50_ms": on,
            "off_rounds": p50s["off"],
            "on_rounds": p50s["on"],
            "difference_ms": on - off,
            "ratio": on / off,
            "noise_ms": noise,
            "measurable": abs(on - off) > noise,
        }
    return figures


def paired_in_process(
    name: str, store: Path, alias: str, *, warmup: int, repeats: int, seed: int = 0
) -> dict[str, Any]:
    """Capture off and on answering the same events alternately in this process (see the module
    docstring): per batch size, both p50s and the median per-pair difference with its 95%
    bootstrap interval, in ms. The functions' stdout goes to /dev/null, as cheap as a pipe."""
    import contextlib
    import random
    import time

    import numpy as np
    from mangum import Mangum

    from functions.app import create_app
    from functions.settings import FunctionSettings
    from tools.local.lambda_context import LocalLambdaContext

    entry = load_registry().get(name)
    events = model_events(name, entry.task)
    context = LocalLambdaContext(
        function_name=name, memory_limit_in_mb=entry.serving.memory_mb, timeout_s=30
    )
    figures: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-capture-") as cache,
        open(os.devnull, "w") as null,
        contextlib.redirect_stdout(null),
    ):
        handlers = {
            mode: Mangum(
                create_app(
                    FunctionSettings(
                        model=name,
                        store_uri=str(store),
                        alias=alias,
                        cache_dir=Path(cache) / mode,
                        capture_sample_rate=float(rate),
                    )
                ),
                lifespan="off",
            )
            for mode, rate in SETTINGS.items()
        }
        order = random.Random(seed)
        for key in ("batch1", "batch16"):
            times: dict[str, list[float]] = {mode: [] for mode in SETTINGS}
            for i in range(warmup + repeats):
                pair = list(SETTINGS)
                order.shuffle(pair)  # which goes first in a pair, drawn: no order bias
                for mode in pair:
                    started = time.perf_counter()
                    response = handlers[mode](events[key], context)
                    elapsed = (time.perf_counter() - started) * 1000
                    if response["statusCode"] != 200:
                        raise SystemExit(f"{name} {mode}: {response['statusCode']}")
                    if i >= warmup:
                        times[mode].append(elapsed)
            off, on = (np.asarray(times[m]) for m in SETTINGS)
            differences = on - off
            rng = np.random.default_rng(seed)
            boot = np.median(
                rng.choice(differences, (2000, len(differences)), replace=True), axis=1
            )
            low, high = np.percentile(boot, [2.5, 97.5])
            figures[key] = {
                "off_p50_ms": float(np.median(off)),
                "on_p50_ms": float(np.median(on)),
                "difference_ms": float(np.median(differences)),
                "interval_ms": [float(low), float(high)],
                "measurable": bool(low > 0 or high < 0),
            }
    return figures


def paired_table(results: dict[str, dict[str, Any]]) -> str:
    rows = [
        "| model | batch | off p50 ms | on p50 ms | median on - off ms (95% interval) | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        for key, f in r.items():
            low, high = f["interval_ms"]
            verdict = "MEASURABLE" if f["measurable"] else "not measurable"
            rows.append(
                f"| {name} | {key.removeprefix('batch')} | {f['off_p50_ms']:.3f} "
                f"| {f['on_p50_ms']:.3f} | {f['difference_ms']:+.3f} ({low:+.3f} to {high:+.3f}) "
                f"| {verdict} |"
            )
    return "\n".join(rows)


def direct_cost_us(batch: int, repeats: int = 2000) -> float:
    """What a captured request of `batch` CIFAR-sized images adds, timed alone in this process:
    its features over the pixels and its record, encoded as the function encodes it (us)."""
    import time

    import numpy as np
    import pydantic_core

    from functions.capture import CaptureDraft, capture_line
    from modelfn.input_features import image_features

    pixels = np.random.default_rng(0).integers(0, 256, (batch, 32, 32, 3), dtype=np.uint8)
    outputs = [{"label": "cat", "score": 0.5}] * batch
    started = time.perf_counter()
    for _ in range(repeats):
        draft = CaptureDraft(raw_wanted=False, outputs=outputs)
        draft.features = image_features([(32, 32)] * batch, pixels)
        line = capture_line(
            draft, service="bench", model="cifar10-cnn", version="20261207T000000Z-00000000",
            precision="fp32", route="POST /models/{name}/predict", status=200, latency_ms=1.0,
            request_id="bench", trace_id="0" * 32,
        )  # fmt: skip
        pydantic_core.to_json(line)
    return (time.perf_counter() - started) / repeats * 1e6


def table(results: dict[str, dict[str, Any]]) -> str:
    rows = [
        "| model | batch | off p50 ms | on p50 ms | on - off ms | on / off | noise ms | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        for key, f in r.items():
            verdict = "MEASURABLE" if f["measurable"] else "within noise"
            rows.append(
                f"| {name} | {key.removeprefix('batch')} | {f['off_p50_ms']:.3f} "
                f"| {f['on_p50_ms']:.3f} | {f['difference_ms']:+.3f} | {f['ratio']:.3f} "
                f"| {f['noise_ms']:.3f} | {verdict} |"
            )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capture", description=__doc__)
    parser.add_argument("--store", default="model_artifacts", help="a local store folder")
    parser.add_argument("--alias", default="latest")
    parser.add_argument("--models", default="cifar10-cnn,imdb-sentiment,ptb-lstm")
    parser.add_argument("--rounds", type=int, default=5, help="warm processes per setting")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=1000, help="paired requests per batch size")
    args = parser.parse_args(argv)
    store = Path(args.store).resolve()
    host = machine()
    results = {
        name: measure(
            name,
            store,
            args.alias,
            rounds=args.rounds,
            warmup=args.warmup,
            repeats=args.repeats,
        )
        for name in args.models.split(",")
    }
    paired = {
        name: paired_in_process(name, store, args.alias, warmup=args.warmup, repeats=args.pairs)
        for name in args.models.split(",")
    }
    direct = {f"batch{n}": direct_cost_us(n) for n in (1, 16)}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    run = {"machine": host, "load_avg_1m_end": os.getloadavg()[0], "args": vars(args)}
    OUT.write_text(
        json.dumps(
            {"run": run, "models": results, "paired": paired, "direct_cost_us": direct}, indent=2
        )
        + "\n"
    )
    print(table(results))
    print("\nPaired in one process, alternating request by request:\n")
    print(paired_table(paired))
    print(
        "\nA captured CIFAR request's own work, timed alone (features + record + encoding): "
        + ", ".join(f"{k.removeprefix('batch')} image(s) {v:.1f} us" for k, v in direct.items())
    )
    print(f"\nfigures: {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
