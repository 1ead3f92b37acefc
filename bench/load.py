"""Concurrent load through the local gateway: errors, latency percentiles, the function's RSS.

    python -m bench.load [--requests 10000] [--clients 8] [--store model_artifacts] [--out FILE]

For each model, `clients` asyncio clients (aiohttp, one connection each) share `requests` POSTs to
`/models/<model>/predict` with the version's own held-out inputs (`examples.json`: CIFAR-10 test
images, IMDB test reviews, Penn Treebank test sentences in the language model's three modes),
one model after another. Every answer must be a 200 whose `outputs` has one entry per input.
The function process's resident memory (VmRSS of /proc/<pid>/status) is read before the load,
after the warm-up and every `requests // 50` requests; a leak shows as RSS that keeps rising
after the warm-up. tests/reliability/test_load.py runs this and asserts on the summary.

Latencies are end to end over HTTP (client, gateway thread, payload-2.0 event over a pipe, the
Lambda handler, and back), with `clients` requests in flight queueing for the one function
process, as requests queue for one Lambda sandbox; warm-up requests are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.stats import percentile
from modelfn.artifact import EXAMPLES_FILE, file_key, parse_examples
from modelfn.registry import REPO_ROOT, Registry
from modelfn.store import ArtifactStore, read_alias

# A request slower than this is an error, not a latency: far above any p99 seen here.
REQUEST_TIMEOUT_S = 30.0
RSS_SAMPLES = 50  # readings per run, after the warm-up


def rss_mb(pid: int) -> float:
    """The resident set of process `pid` now (VmRSS, KiB in /proc), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/{pid}/status has no VmRSS line (a kernel thread, or not Linux)")


def request_bodies(registry: Registry, store: ArtifactStore, model: str) -> list[dict[str, Any]]:
    """Predict bodies for `model` from its serving version's examples.json: real held-out inputs."""
    entry = registry.get(model)
    version = read_alias(store, model, entry.serving.alias).version
    examples = parse_examples(store.get_bytes(file_key(model, version, EXAMPLES_FILE)))
    inputs = [example.input for example in examples.examples]
    if entry.task == "image-classification":
        return [{"inputs": [image], "parameters": {"top_k": 3}} for image in inputs]
    if entry.task == "text-classification":
        return [{"inputs": [text]} for text in inputs] + [{"inputs": inputs}]
    # language-modeling: every mode the route serves; a prompt is a sentence's opening words.
    bodies: list[dict[str, Any]] = [{"inputs": inputs, "parameters": {"mode": "score"}}]
    for i, text in enumerate(inputs):
        prompt = " ".join(text.split()[:4])
        bodies.append({"inputs": [prompt], "parameters": {"mode": "next", "top_k": 5}})
        generate = {"mode": "generate", "max_tokens": 8, "temperature": 0.8, "seed": i}
        bodies.append({"inputs": [prompt], "parameters": generate})
    return bodies


@dataclass
class LoadResult:
    """One model's run; `rss_mb` holds the readings, `errors` up to 10 examples."""

    model: str
    requests: int
    warmup: int
    clients: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    requests_per_s: float
    rss_start_mb: float
    rss_warm_mb: float
    rss_end_mb: float
    rss_max_mb: float
    error_examples: list[str] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)

    @property
    def rss_growth_mb(self) -> float:
        """RSS at the end less RSS after the warm-up: what the measured requests added."""
        return self.rss_end_mb - self.rss_warm_mb

    def summary(self) -> dict[str, Any]:
        """The figures docs quote (no RSS series, no error text)."""
        found = asdict(self)
        del found["rss_mb"], found["error_examples"]
        found["rss_growth_mb"] = round(self.rss_growth_mb, 2)
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in found.items()}


async def _drive(
    url: str,
    model: str,
    bodies: list[bytes],
    sizes: list[int],
    *,
    requests: int,
    clients: int,
    on_done: Any = None,
) -> tuple[list[float], list[str]]:
    """Send `requests` POSTs over `clients` connections; latencies (s) of the good ones, errors."""
    import aiohttp

    latencies: list[float] = []
    errors: list[str] = []
    target = f"{url}/models/{model}/predict"
    headers = {"content-type": "application/json"}
    order = iter(range(requests))  # shared by the clients: each takes the next request number
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client() -> None:
            for n in order:
                body, size = bodies[n % len(bodies)], sizes[n % len(bodies)]
                started = time.perf_counter()
                try:
                    async with session.post(target, data=body, headers=headers) as response:
                        status, payload = response.status, await response.read()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    errors.append(f"request {n}: {exc!r}")
                    continue
                elapsed = time.perf_counter() - started
                if status != 200:
                    errors.append(f"request {n}: HTTP {status}: {payload[:200]!r}")
                elif len(json.loads(payload).get("outputs", [])) != size:
                    errors.append(f"request {n}: not one output per input: {payload[:200]!r}")
                else:
                    latencies.append(elapsed)
                if on_done is not None:
                    on_done(n)

        await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, errors


def run_load(
    url: str,
    model: str,
    bodies: list[dict[str, Any]],
    pid: int,
    *,
    requests: int,
    clients: int = 8,
    warmup: int | None = None,
) -> LoadResult:
    """Warm up, then drive `requests` predictions at `model` through the gateway at `url`."""
    warmup = max(50, requests // 10) if warmup is None else warmup
    encoded = [json.dumps(body).encode() for body in bodies]
    sizes = [len(body["inputs"]) for body in bodies]
    rss_start = rss_mb(pid)
    _, warm_errors = asyncio.run(
        _drive(url, model, encoded, sizes, requests=warmup, clients=clients)
    )
    readings = [rss_mb(pid)]
    every = max(1, requests // RSS_SAMPLES)

    def sample(n: int) -> None:
        if n % every == every - 1:
            readings.append(rss_mb(pid))

    started = time.perf_counter()
    latencies, errors = asyncio.run(
        _drive(url, model, encoded, sizes, requests=requests, clients=clients, on_done=sample)
    )
    seconds = time.perf_counter() - started
    readings.append(rss_mb(pid))
    errors = warm_errors + errors
    ms = [1000 * s for s in latencies] or [float("nan")]
    return LoadResult(
        model=model,
        requests=requests,
        warmup=warmup,
        clients=clients,
        errors=len(errors),
        seconds=seconds,
        p50_ms=percentile(ms, 50),
        p99_ms=percentile(ms, 99),
        requests_per_s=requests / seconds,
        rss_start_mb=rss_start,
        rss_warm_mb=readings[0],
        rss_end_mb=readings[-1],
        rss_max_mb=max(readings),
        error_examples=errors[:10],
        rss_mb=readings,
    )


def machine() -> dict[str, Any]:
    """Where the figures were taken: CPUs this process may use, Python, OS."""
    return {
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> int:
    from modelfn.registry import load_registry
    from modelfn.store import open_store
    from tools.local.deployment import local_deployment

    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--requests", type=int, default=10_000, help="per model, after the warm-up")
    parser.add_argument("--clients", type=int, default=8, help="concurrent connections")
    parser.add_argument("--store", default=str(REPO_ROOT / "model_artifacts"))
    parser.add_argument("--models", help="comma-separated (default: every published model)")
    parser.add_argument("--out", type=Path, help="write the JSON summary here too")
    args = parser.parse_args(argv)
    registry, store = load_registry(), open_store(args.store)
    models = args.models.split(",") if args.models else None
    results = []
    with local_deployment(
        registry, store, models=models, log_dir=REPO_ROOT / "build" / "logs"
    ) as running:
        pids = running.pids()
        for model in running.functions:
            bodies = request_bodies(registry, store, model)
            result = run_load(
                running.url,
                model,
                bodies,
                pids[model],
                requests=args.requests,
                clients=args.clients,
            )
            results.append(result.summary())
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    report = {"machine": machine(), "models": results}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0 if all(r["errors"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
