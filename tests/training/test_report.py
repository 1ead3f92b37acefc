"""The evaluation report written beside every artifact: files, classes, mistakes, curves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modelfn.artifact import read_manifest, verify_artifact
from training.metrics import classification_report
from training.report import report_files
from training.trained_model import Evaluation, most_confident_mistakes


def test_the_imdb_report_names_its_classes_and_its_mistakes(imdb_artifact: Path) -> None:
    manifest = verify_artifact(imdb_artifact)  # the report files are files of the version
    report = json.loads((imdb_artifact / "report.json").read_text())
    assert [c["label"] for c in report["per_class"]] == ["negative", "positive"]
    assert report["metrics"] == manifest.metrics
    matrix = np.array(report["confusion_matrix"]["rows_true_columns_predicted"])
    assert matrix.sum() == manifest.data.examples["test"]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(manifest.metrics["accuracy"])
    mistakes = report["most_confident_mistakes"]
    assert mistakes and all(m["true"] != m["predicted"] and m["text"] for m in mistakes)
    assert [m["confidence"] for m in mistakes] == sorted(
        (m["confidence"] for m in mistakes), reverse=True
    )
    markdown = (imdb_artifact / "report.md").read_text()
    assert (
        "| negative |" in markdown and "![confusion_matrix.png](confusion_matrix.png)" in markdown
    )
    assert Image.open(imdb_artifact / "confusion_matrix.png").format == "PNG"


def test_the_ptb_report_has_perplexity_by_sentence_length(ptb_artifact: Path) -> None:
    manifest = read_manifest(ptb_artifact)
    report = json.loads((ptb_artifact / "report.json").read_text())
    rows = report["perplexity_by_sentence_length"]
    assert [r["words"] for r in rows][:2] == ["1-10", "11-20"]
    assert sum(r["sentences"] for r in rows) == manifest.data.examples["test"]
    # The buckets add up to the test file's per-sentence perplexity.
    log_prob = sum(r["tokens"] * np.log(r["perplexity"]) for r in rows)
    tokens = sum(r["tokens"] for r in rows)
    assert np.exp(log_prob / tokens) == pytest.approx(
        manifest.metrics["test_sentence_perplexity"], rel=1e-9
    )
    assert report["history"][-1]["valid_perplexity"] == pytest.approx(
        manifest.metrics["valid_perplexity"]
    )


def test_image_mistakes_become_a_thumbnail_grid() -> None:
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(3), size=20)
    truth = rng.integers(0, 3, 20)
    images = rng.integers(0, 256, (20, 3, 32, 32), dtype=np.uint8)
    mistakes = most_confident_mistakes(probabilities, truth, ["a", "b", "c"], count=5, image=images)
    assert len(mistakes) == 5 and all(m.image is not None for m in mistakes)
    evaluation = Evaluation(
        history=[{"epoch": 1, "train_loss": 1.0, "test_accuracy": 0.5}],
        classes=classification_report(truth, probabilities.argmax(1), 3),
        mistakes=mistakes,
    )
    files = report_files("demo", ["a", "b", "c"], {"accuracy": 0.5}, evaluation)
    assert set(files) == {
        "report.json",
        "report.md",
        "learning_curves.png",
        "confusion_matrix.png",
        "mistakes.png",
    }
    assert "image" not in json.dumps(json.loads(files["report.json"])["most_confident_mistakes"])
