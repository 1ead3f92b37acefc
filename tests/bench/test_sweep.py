"""The size sweep's own logic (bench/sweep.py): the line it fits, its arguments, its targets and
the page it writes. Nothing here is measured: the results below are FABRICATED, small round
numbers to check the arithmetic and the writer, and no test asserts a timing."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from bench.peers.synthetic import bert_parameters, hidden_for
from bench.report import write_markdown
from bench.sweep import judge, linear_fit, parse_args, parse_sizes, run_commands
from modelfn.registry import REPO_ROOT


def test_the_line_through_exact_points_is_found_with_r2_one() -> None:
    line = linear_fit([10, 100, 1000], [1.1, 2.0, 11.0])  # y = 1 + 0.01 x
    assert line["slope"] == pytest.approx(0.01)
    assert line["intercept"] == pytest.approx(1.0)
    assert line["r2"] == pytest.approx(1.0)
    noisy = linear_fit([0, 1, 2, 3], [0.0, 2.0, 1.0, 3.0])  # numpy.polyfit: 0.8, 0.3
    assert (noisy["slope"], noisy["intercept"]) == (pytest.approx(0.8), pytest.approx(0.3))
    assert noisy["r2"] == pytest.approx(0.64)
    for xs, ys in (([1.0], [2.0]), ([1.0, 1.0], [2.0, 3.0]), ([1.0, 2.0], [1.0])):
        with pytest.raises(ValueError):
            linear_fit(xs, ys)


def test_sizes_and_runs_are_parsed_and_bad_ones_refused_by_name() -> None:
    assert parse_sizes("500,10, 100,10") == (10, 100, 500)
    for bad in ("10,ten", "0,10", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="--sizes-mb"):
            parse_sizes(bad)
    full, quick = parse_args([]), parse_args(["--quick"])
    assert full.sizes_mb == (10, 100, 500, 1000, 2000) and full.runs == 5
    assert 2000 not in quick.sizes_mb and quick.runs == 2  # bench-quick leaves the 2 GB out
    assert parse_args(["--sizes-mb", "10,100", "--runs", "3"]).sizes_mb == (10, 100)
    with pytest.raises(SystemExit):
        parse_args(["--runs", "0"])
    assert run_commands([]) == ["make bench", "python -m bench.sweep"]
    assert run_commands(["--quick"]) == ["make bench-quick", "python -m bench.sweep --quick"]
    assert run_commands(["--runs", "2"]) == ["python -m bench.sweep --runs 2"]


def test_the_synthetic_models_come_within_a_tenth_of_their_sizes() -> None:
    for size in (100, 500, 1000, 2000):
        assert 4 * bert_parameters(hidden_for(size)) / 1e6 == pytest.approx(size, rel=0.1)
    assert hidden_for(1000) % 64 == 0


def fabricated_point(size_mb: int, s3: float, limit: float, rss_mib: float) -> dict[str, Any]:
    """One size's record as measure_size writes it; FABRICATED figures."""
    return {
        "size_mb": size_mb, "model": f"sweep-{size_mb}mb", "version": "20260101T000000Z-00000000",
        "shape": {"layers": 4, "hidden": 64, "head_dim": 64},
        "files_mb": {"model.onnx": 0.5, "model.onnx.data": float(size_mb)},
        "fetched_mb": size_mb + 0.5, "graph_mb": size_mb + 0.5,
        "cold_start_s": {"modelfn_s3": s3, "modelfn_cached": s3 / 2, "limit": limit},
        "runs_s": {"modelfn_s3": [s3], "modelfn_cached": [s3 / 2], "session": [limit / 2],
                   "get-object": [limit / 2]},
        "limit": {"read_s": {"get-object": limit / 2}, "fastest_way": "get-object",
                  "session_s": limit / 2},
        "s3_to_limit": s3 / limit, "hashed_read_s": limit,
        "peak_rss_mib": {"s3": rss_mib, "cached": rss_mib, "max": rss_mib},
        "peak_rss_to_graph": rss_mib / ((size_mb + 0.5) * 1e6 / (1 << 20)),
        "load_avg_1m": [0.5],
    }  # fmt: skip


def fabricated_sweep() -> dict[str, Any]:
    points = [
        fabricated_point(100, 2.0, 1.0, 300.0),
        fabricated_point(1000, 12.0, 10.0, 1100.0),
        fabricated_point(2000, 27.0, 20.0, 2200.0),
    ]
    return {
        "machine": {"cpu": "FABRICATED", "cores": 2, "load_avg_1m_start": 0.5,
                    "load_avg_1m_end": 0.7},
        "date": "2026-01-01T00:00:00+00:00", "seconds": 1.0, "runs": 1,
        "commands": ["make bench", "python -m bench.sweep"],
        "points": points,
        "fits": {"modelfn_s3": {**linear_fit([100.5, 1000.5, 2000.5], [2.0, 12.0, 27.0]),
                                "mb_per_s": 76.0},
                 "modelfn_cached": {"slope": 0.005, "intercept": 0.5, "r2": 0.99, "mb_per_s": 200},
                 "limit": {"slope": 0.01, "intercept": 0.0, "r2": 1.0, "mb_per_s": 100.0}},
        "targets": judge(points),
    }  # fmt: skip


def test_targets_judge_every_point_from_1_gb_and_the_rss_at_1_gb() -> None:
    found = judge(fabricated_sweep()["points"])
    # 1000 MB: 1.2x, 2000 MB: 1.35x -> the worst is the 2 GB point, and the target is missed.
    assert found["cold_start_s3_to_limit"] == {
        "value": 1.35, "limit": 1.3, "at_mb": 2000, "met": False
    }  # fmt: skip
    rss = found["peak_rss_to_graph"]
    assert rss["at_mb"] == 1000 and rss["value"] == pytest.approx(1100 / (1000.5 / 1.048576))
    assert rss["met"]
    assert judge([fabricated_point(100, 2.0, 1.0, 300.0)]) == {}  # no point reaches a target


def test_the_page_keeps_the_sweep_section_and_the_main_figures_together(tmp_path: Path) -> None:
    latest = json.loads((REPO_ROOT / "bench" / "results" / "latest.json").read_text())
    page = tmp_path / "benchmarks.md"
    write_markdown(latest, page, sweep=fabricated_sweep())
    text = page.read_text()
    assert text.startswith("# Benchmarks: modelfn against the torch handler")
    assert "## Size sweep: cold start against model size, next to the limit" in text
    assert "![cold start against size](benchmarks/sweep.png)" in text
    row = (
        "| 1000 | 1000 | 12.00 | 6.00 | 5.00 (get-object) | 5.00 | 10.00 | 1.20x | 1100 | 1.15x "
        "| 10.00 |"
    )
    assert row in text
    assert "| cold_start_s3_to_limit | 1.35 | 1.30 | 2000 | **no** |" in text
    assert "modelfn, from S3 76 MB/s" in text
    assert text.index("## cifar10-cnn") < text.index("## Size sweep")  # after the models
    write_markdown(latest, page)  # without a sweep: no section
    assert "## Size sweep" not in page.read_text()
