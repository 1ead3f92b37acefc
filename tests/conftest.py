"""Session fixtures shared across the test tree: real tiny artifacts (trained once)."""

from __future__ import annotations

from pathlib import Path

import pytest

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
