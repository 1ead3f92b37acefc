"""`make demo`'s script, end to end, with one training epoch to keep it short."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelfn.local.demo import run_demo

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


@pytest.mark.skipif(not (DATA / "cifar-10-batches-py").is_dir(), reason=f"CIFAR-10 sample not found at {DATA}")
def test_demo_prints_predictions_next_to_true_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_demo(images=5, data=str(DATA), epochs=1, store_uri=str(tmp_path / "store"), out_dir=tmp_path / "build")
    assert code == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.strip() and line.split()[0].isdigit()]
    labels = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}
    assert len(rows) == 5 and all(row[1] in labels and row[2] in labels for row in rows)
    correct = sum(row[1] == row[2] for row in rows)
    assert f"{correct}/5 correct" in out
    assert "HTTP 200: outputs[0] logits shape [1, 10]" in out
    assert "GET /v2/health/ready -> HTTP 200" in out


def test_importing_function_code_leaves_modelfn_loggers_alone() -> None:
    # The demo imports the function's normalisation; Powertools must not take over "modelfn.*".
    import logging

    import functions.log  # noqa: F401

    assert not logging.getLogger("modelfn").handlers
