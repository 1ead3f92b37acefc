"""The results record of one model: what its measurements become (`model_result`), and the
issue's targets judged on them (`targets`). bench/run.py measures, bench/report.py writes
docs/benchmarks.md from the record; tests/bench builds one from these functions.
"""

from __future__ import annotations

from typing import Any

from bench import cost, stats
from bench.agreement import ANSWERS_COMPARED

TARGETS = ("modelfn", "torch-handler")  # the two Lambda handlers, each probed as Lambda runs it


def model_result(
    *,
    manifest: Any,
    memory_mb: int,
    cold: dict[str, list[float]],
    cold_s3: dict[str, list[float]],
    rps: dict[str, float],
    warm: dict[str, dict[str, Any]],
    repeats: int,
) -> dict[str, Any]:
    """The record of one model: medians and percentiles of the runs, cost, training throughput.

    `cold` and `cold_s3` hold each server's cold starts (seconds per run), `warm` each server's
    probe report (ms per request at batch 1 and 16, peak RSS; modelfn's also the bare
    `session.run` floor), `rps` the gateway's throughput per client count.
    """
    servers = tuple(cold)  # every server measured: the two targets, then the HTTP peers
    p50 = {t: stats.percentile(warm[t]["batch1"], 50) for t in servers}
    floor = stats.percentile(warm["modelfn"]["floor_batch1"], 50)
    memory = memory_mb
    record = manifest.training
    throughput: dict[str, float | None] = {}
    if record is None:  # an imported version: no training here, its import record instead
        origin: dict[str, Any] = {
            "imported": {
                "source": manifest.imported.source,
                "reference": manifest.imported.reference,
            }
        }
    else:
        examples = manifest.data.examples.get("train", 0)
        throughput = (
            {"tokens_per_s": manifest.metrics["train_tokens_per_second"]}
            if "train_tokens_per_second" in manifest.metrics
            else {
                "examples_per_s": examples * record.epochs / record.seconds
                if record.seconds
                else None
            }
        )
        origin = {
            "training": {
                "preset": record.preset,
                "epochs": record.epochs,
                "seconds": record.seconds,
            }
        }
    return {
        "version": manifest.version,
        "memory_mb": memory,
        # measure_model stops the run (SystemExit) where any server disagrees, so a result
        # exists only for servers that agreed, in the sense stated here.
        "answers_agree": True,
        "answers_compared": ANSWERS_COMPARED,
        "cold_start_s": {t: stats.percentile(v, 50) for t, v in cold.items()},
        "cold_start_runs_s": cold,
        "cold_start_s3_s": {t: stats.percentile(v, 50) for t, v in cold_s3.items()},
        "cold_start_s3_runs_s": cold_s3,
        "rps": rps,
        "warm_p50_ms": {**p50, "floor": floor},
        "warm_p99_ms": {
            **{t: stats.percentile(warm[t]["batch1"], 99) for t in servers},
            "floor": stats.percentile(warm["modelfn"]["floor_batch1"], 99),
        },
        "batch16_p50_ms": {
            **{t: stats.percentile(warm[t]["batch16"], 50) for t in servers},
            "floor": stats.percentile(warm["modelfn"]["floor_batch16"], 50),
        },
        "peak_rss_mb": {t: warm[t]["peak_rss_mb"] for t in servers},
        "cost_per_million_usd": {
            arch: {t: cost.cost_per_million(p50[t], memory, arch) for t in TARGETS}
            for arch in cost.GB_SECOND_USD
        },
        "warm_requests": {"warmup_excluded": warm["modelfn"]["warmup"], "measured": repeats},
        "training_throughput": throughput,
        **origin,  # "training" (preset, epochs, seconds) or "imported" (source, reference)
    }


def targets(name: str, m: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The issue's targets, each as value, limit and whether this run met it."""
    cold, torch_cold = m["cold_start_s"]["modelfn"], m["cold_start_s"]["torch-handler"]
    floor = m["warm_p50_ms"]["floor"]
    found = {
        "cold_start_s": {"value": cold, "limit": 1.0, "met": cold <= 1.0},
        "cold_start_speedup_vs_torch": {
            "value": stats.ratio(torch_cold, cold),
            "limit": 3.0,
            "met": torch_cold >= 3 * cold,
        },
        "peak_rss_mb": {
            "value": m["peak_rss_mb"]["modelfn"],
            "limit": 150,
            "met": m["peak_rss_mb"]["modelfn"] <= 150,
        },
        "package_mb": {
            "value": m["package_mb"]["modelfn"],
            "limit": 150,
            "met": m["package_mb"]["modelfn"] <= 150,
        },
    }
    if name == "cifar10-cnn":  # the warm-path target is set for the image model
        limit = 1.5 * floor + 0.5
        found["warm_p50_ms"] = {
            "value": m["warm_p50_ms"]["modelfn"],
            "limit": limit,
            "met": m["warm_p50_ms"]["modelfn"] <= limit,
        }
    return found
