"""Session fixtures shared across the test tree: real tiny artifacts (trained once)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelfn.registry import REPO_ROOT, load_registry
from modelfn.store import LocalStore, publish_artifact
from tests.support.text_models import train_tiny

# Fails the run if anything the suite logged holds a secret or a request body (tests/log_hygiene.py).
pytest_plugins = ["tests.log_hygiene"]


@pytest.fixture(scope="session")
def ptb_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny("ptb-lstm", tmp_path_factory.mktemp("ptb-artifact"))


@pytest.fixture(scope="session")
def imdb_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny("imdb-sentiment", tmp_path_factory.mktemp("imdb-artifact"))


@pytest.fixture(scope="session")
def cifar_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny("cifar10-cnn", tmp_path_factory.mktemp("cifar-artifact"))


@pytest.fixture(scope="session")
def published_store(
    cifar_artifact: Path,
    ptb_artifact: Path,
    imdb_artifact: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> LocalStore:
    """A local store holding the three registry models, trained here with their `tiny` presets
    on the real data, so the tests that serve all three (tests/reliability, tests/playground)
    run in CI's clean clone, where the git-ignored model_artifacts/ does not exist."""
    store = LocalStore(tmp_path_factory.mktemp("published"))
    for folder in (cifar_artifact, ptb_artifact, imdb_artifact):
        publish_artifact(store, folder)
    return store


# --- Hugging Face folders built from configs, and their imports (tests/support/hf_folders.py) ---


@pytest.fixture(scope="session")
def imdb_wordpiece() -> Any:
    """A WordPiece tokenizer trained on the real IMDB training reviews (about 3 s)."""
    from tests.support.hf_folders import IMDB_DIR, imdb_texts, wordpiece_tokenizer

    if not (IMDB_DIR / "train.csv").is_file():
        pytest.skip(f"IMDB reviews not found in {IMDB_DIR} (expected ../shared/data/imdb)")
    return wordpiece_tokenizer(imdb_texts("train"))


@pytest.fixture(scope="session")
def hf_bert_classifier(imdb_wordpiece: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.hf_folders import save_bert

    return save_bert(tmp_path_factory.mktemp("bert-classifier"), imdb_wordpiece, classifier=True)


@pytest.fixture(scope="session")
def hf_bert_encoder(imdb_wordpiece: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.hf_folders import save_bert

    return save_bert(tmp_path_factory.mktemp("bert-encoder"), imdb_wordpiece, classifier=False)


@pytest.fixture(scope="session")
def hf_vit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.hf_folders import save_vit

    return save_vit(tmp_path_factory.mktemp("vit"))


@pytest.fixture(scope="session")
def imported_text_classifier(
    hf_bert_classifier: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The BERT classifier imported with three real IMDB test reviews as examples."""
    from tests.support.hf_folders import import_quietly, review_files

    root = tmp_path_factory.mktemp("imported-bert")
    return import_quietly(
        hf_bert_classifier,
        root / "artifacts",
        name="imdb-bert",
        task="text-classification",
        examples=review_files(root / "examples", 3),
    )


@pytest.fixture(scope="session")
def imported_embedder(hf_bert_encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The BERT encoder imported as feature-extraction: mean pooling, L2-normalised."""
    from importing import TextOptions
    from tests.support.hf_folders import import_quietly

    return import_quietly(
        hf_bert_encoder,
        tmp_path_factory.mktemp("imported-embedder"),
        name="imdb-embedder",
        task="feature-extraction",
        text=TextOptions(pooling="mean", normalize=True),
    )


# Set to serve the versions a developer trained into model_artifacts/ (say, the full presets) in
# the load and browser tests instead of the session's own tiny ones.
USE_MODEL_ARTIFACTS = "MODELFN_TEST_MODEL_ARTIFACTS"


@pytest.fixture(scope="session")
def serving_store(request: pytest.FixtureRequest) -> LocalStore:
    """The models the tests serve: the session's own (`published_store`), so every machine checks
    the same versions; model_artifacts/ only when MODELFN_TEST_MODEL_ARTIFACTS=1 asks for it, and
    then it must hold the three registry models under their serving aliases."""
    if os.environ.get(USE_MODEL_ARTIFACTS) != "1":
        published: LocalStore = request.getfixturevalue("published_store")
        return published
    registry = load_registry()
    local = LocalStore(REPO_ROOT / "model_artifacts")
    missing = [
        m
        for m in registry.names()
        if not local.exists(f"{m}/aliases/{registry.get(m).serving.alias}.json")
    ]
    if missing:
        pytest.fail(
            f"{USE_MODEL_ARTIFACTS}=1, but model_artifacts/ lacks {', '.join(missing)} under "
            "their serving aliases: train them (make demo) or unset the variable"
        )
    return local


# --- CI: a skip is a failure -------------------------------------------------------------------
# .ci/run sets MODELFN_CI=1. There a missing data set or browser means the suite did not run what
# it claims, so each skip (skipif marks, pytest.skip, importorskip alike) turns into a failure
# naming its reason; locally the skips stay, with their reasons.
IN_CI = os.environ.get("MODELFN_CI") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        reason = str(reason).removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"skipped in CI (MODELFN_CI=1), which counts as a failure: {reason}"
