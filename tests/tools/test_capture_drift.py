"""Capture to drift, end to end on this machine (issue 23 items 4-5), as docs/serving.md walks it:
models.toml turns capture on; `modelfn serve`'s deployment (gateway, function processes, local S3)
answers real inputs; its delivery files the records in the local store; `modelfn drift` compares
them with the reference statistics training recorded in the version's manifest.

The versions are the `tiny` trainings of tests/conftest.py, whose reference is their test split.
Sent those very test inputs, the function must capture the features training measured (the two
sides share modelfn/input_features.py but not their callers) and answer as training did: no flag,
PSI near 0. Sent the same images brighter, or Penn Treebank sentences in place of reviews: drift.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples.walkthrough.send_traffic import inputs_of
from modelfn.artifact import read_manifest
from modelfn.capture import CaptureEntry, read_captured
from modelfn.registry import Registry, load_registry
from modelfn.store import LocalStore, publish_artifact
from tests.support.text_models import SHARED_DATA
from tools.cli import main
from tools.local.deployment import local_deployment

BATCH = 16


@pytest.fixture(scope="module", autouse=True)
def data() -> None:
    for needed in ("cifar-10-batches-py", "imdb", "ptb"):
        if not (SHARED_DATA / needed).is_dir():
            pytest.skip(f"{SHARED_DATA / needed} not found: the capture test sends real inputs")


def capturing_registry() -> Registry:
    """models.toml with every request of the two classifiers captured."""
    registry = load_registry()
    on = CaptureEntry(sample_rate=1.0)
    return Registry(
        models={
            name: entry.model_copy(update={"capture": on})
            if name in ("cifar10-cnn", "imdb-sentiment")
            else entry
            for name, entry in registry.models.items()
        }
    )


@contextlib.contextmanager
def served(store: LocalStore, logs: Path) -> Iterator[str]:
    """The local deployment of both classifiers, capturing into `store`; its gateway's URL."""
    with local_deployment(
        capturing_registry(),
        store,
        models=["cifar10-cnn", "imdb-sentiment"],
        log_dir=logs,
        playground=False,
    ) as deployment:
        yield deployment.url


def send(url: str, model: str, inputs: Sequence[Any]) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        for start in range(0, len(inputs), BATCH):
            reply = client.post(
                f"/models/{model}/predict", json={"inputs": list(inputs[start : start + BATCH])}
            )
            assert reply.status_code == 200, reply.text


def drift(model: str, store: LocalStore, out: Path) -> tuple[int, dict[str, Any]]:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(
            ["drift", model, "--since", "1h", "--store", str(store.root), "--out", str(out)]
        )
    return status, json.loads((out / "drift.json").read_text())


def store_with(tmp_path: Path, *folders: Path) -> LocalStore:
    store = LocalStore(tmp_path / "store")
    for folder in folders:
        publish_artifact(store, folder)
    return store


def psi_of(report: dict[str, Any]) -> dict[str, float]:
    figures = {f["name"]: f["psi"] for f in report["features"]}
    for name in ("labels", "confidence"):
        if report.get(name):
            figures[name] = report[name]["psi"]
    return figures


def test_the_test_split_is_captured_as_training_measured_it_and_brighter_images_drift(
    cifar_artifact: Path, imdb_artifact: Path, tmp_path: Path
) -> None:
    reference = read_manifest(cifar_artifact).reference
    assert reference is not None
    # The script docs/serving.md runs: the test split, then the same 50 levels brighter.
    same = inputs_of("cifar10-cnn", 10_000, brighter=0, ptb=False)
    assert len(same) == reference.examples  # the very inputs the reference was measured on
    brighter = inputs_of("cifar10-cnn", 10_000, brighter=50, ptb=False)

    plain = store_with(tmp_path / "plain", cifar_artifact, imdb_artifact)
    with served(plain, tmp_path / "logs-plain") as url:
        send(url, "cifar10-cnn", same)
    # Delivered when the deployment stopped: one record per request, every input's features.
    records = read_captured(plain, "cifar10-cnn")
    assert sum(len(r.features) for r in records) == len(same)
    assert all(r.version == cifar_artifact.name and r.outputs for r in records)
    status, report = drift("cifar10-cnn", plain, tmp_path / "drift-plain")
    assert status == 0 and report["verdict"] == "stable", report["flagged"]
    figures = psi_of(report)
    # The same pixels measured on both sides: the same histograms, and the same answers.
    assert max(figures.values()) < 0.01, figures
    assert set(figures) >= {"brightness", "std_r", "labels", "confidence"}

    shifted = store_with(tmp_path / "shifted", cifar_artifact, imdb_artifact)
    with served(shifted, tmp_path / "logs-shifted") as url:
        send(url, "cifar10-cnn", brighter)
    status, report = drift("cifar10-cnn", shifted, tmp_path / "drift-shifted")
    assert status == 3 and report["verdict"] == "drift"
    assert {"brightness", "mean_r", "mean_g", "mean_b"} <= set(report["flagged"])
    assert "width" not in report["flagged"]  # the same size, only brighter
    assert (tmp_path / "drift-shifted" / "drift.md").read_text().count("**drift**") >= 4
    assert (tmp_path / "drift-shifted" / "brightness.png").stat().st_size > 1000


def test_reviews_are_captured_as_training_measured_them_and_news_sentences_drift(
    cifar_artifact: Path, imdb_artifact: Path, tmp_path: Path
) -> None:
    reference = read_manifest(imdb_artifact).reference
    assert reference is not None
    reviews = inputs_of("imdb-sentiment", 100_000, brighter=0, ptb=False)
    assert len(reviews) == reference.examples
    sentences = inputs_of("imdb-sentiment", 300, brighter=0, ptb=True)

    plain = store_with(tmp_path / "plain", cifar_artifact, imdb_artifact)
    with served(plain, tmp_path / "logs-plain") as url:
        send(url, "imdb-sentiment", reviews)
    status, report = drift("imdb-sentiment", plain, tmp_path / "drift-plain")
    assert status == 0 and report["verdict"] == "stable", report["flagged"]
    assert max(psi_of(report).values()) < 0.01, psi_of(report)

    shifted = store_with(tmp_path / "shifted", cifar_artifact, imdb_artifact)
    with served(shifted, tmp_path / "logs-shifted") as url:
        send(url, "imdb-sentiment", sentences)
    status, report = drift("imdb-sentiment", shifted, tmp_path / "drift-shifted")
    assert status == 3 and {"chars", "tokens"} <= set(report["flagged"])
    # No text reached a record or the log: lengths and rates only.
    logged = (tmp_path / "logs-shifted" / "imdb-sentiment.log").read_text()
    assert all(sentence not in logged for sentence in sentences[:20])
