"""`make demo`'s script, end to end, with the `tiny` presets to keep it short."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from modelfn.registry import REPO_ROOT
from tools.demo import run_demo

DATA = REPO_ROOT.parent / "shared" / "data"
CIFAR_LABELS = {
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
}


@pytest.mark.skipif(
    not all((DATA / d).is_dir() for d in ("cifar-10-batches-py", "ptb", "imdb")),
    reason=f"the CIFAR-10, PTB and IMDB samples are not all at {DATA}",
)
def test_demo_prints_real_answers_next_to_the_truth_for_the_three_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_demo(
        images=5,
        reviews=4,
        sentences=8,
        data=str(DATA),
        preset="tiny",
        store_uri=str(tmp_path / "store"),
        out_dir=tmp_path / "build",
        demo_image=tmp_path / "cat.png",
    )
    assert code == 0
    out = capsys.readouterr().out
    # The README's curl example posts this file: a real 32x32 test image of a cat.
    assert Image.open(tmp_path / "cat.png").size == (32, 32)
    assert f"(cat) to {tmp_path / 'cat.png'}" in out
    rows = [row for row in rows_of(out) if row[0].isdigit()]
    images = [row for row in rows if row[1] in CIFAR_LABELS]
    assert len(images) == 5 and all(row[2] in CIFAR_LABELS for row in images)
    assert f"{sum(row[1] == row[2] for row in images)}/5 correct" in out
    reviews = [row for row in rows if row[1] in {"positive", "negative"}]
    assert len(reviews) == 4 and all(row[2] in {"positive", "negative"} for row in reviews)
    assert f"{sum(row[1] == row[2] for row in reviews)}/4 correct" in out
    assert "OIP: outputs[0] logits shape [1, 10]" in out
    # The imported model: cifar10-cnn's graph brought in as an ONNX file with a resize + crop
    # scheme, published, registered in the demo's copy of models.toml, served beside the three.
    assert "== 4/9 import cifar10-cnn's ONNX graph as cifar10-imported" in out
    assert "  published cifar10-imported " in out
    assert f"  added [models.cifar10-imported] to {tmp_path / 'models.toml'}" in out
    assert "[models.cifar10-imported]" not in (REPO_ROOT / "models.toml").read_text()
    assert "function cifar10-imported: init" in out
    imported = [row for row in rows_of(out) if row[0].startswith("#") and row[0][1:].isdigit()]
    assert [row[0] for row in imported] == [f"#{row[0]}" for row in images]
    assert all(row[1] in CIFAR_LABELS and row[2] in CIFAR_LABELS for row in imported)
    # The last column is cifar10-cnn's answer to the same image at 32x32, from the step before.
    assert [row[-1] for row in imported] == [row[2] for row in images]
    hits = sum(row[1] == row[2] for row in imported)
    same = sum(row[2] == row[-1] for row in imported)
    assert f"  {hits}/5 correct; {same}/5 the answer cifar10-cnn gave the 32x32 original" in out
    assert "OIP BYTES: 'a truly wonderful film' -> " in out
    assert "the 8 sentences: " in out and "next after 'the company said': " in out
    assert "generate (temperature 0.8, seed 7): the company said ... " in out
    assert "GET /v2/health/ready -> HTTP 200" in out
    assert "GET / (the playground: each model's page and card) -> HTTP 200" in out
    assert out.rstrip().endswith("then open http://127.0.0.1:8080/")


def rows_of(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines() if line.strip()]


def test_importing_function_code_leaves_modelfn_loggers_alone() -> None:
    # The demo imports the function's normalisation; Powertools must not take over "modelfn.*".
    import logging

    import functions.log  # noqa: F401

    assert not logging.getLogger("modelfn").handlers
