"""Session fixtures shared across the test tree: real tiny artifacts (trained once)."""

from __future__ import annotations

from pathlib import Path

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


@pytest.fixture(scope="session")
def serving_store(request: pytest.FixtureRequest) -> LocalStore:
    """model_artifacts/ when it holds the three registry models under their serving aliases (the
    versions a developer trained); in a clean clone, where it is absent, `published_store`."""
    registry = load_registry()
    local = LocalStore(REPO_ROOT / "model_artifacts")
    if all(
        local.exists(f"{m}/aliases/{registry.get(m).serving.alias}.json") for m in registry.names()
    ):
        return local
    published: LocalStore = request.getfixturevalue("published_store")
    return published
