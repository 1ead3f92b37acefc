"""Shared fixtures: the real CIFAR-10 sample in <repo>/../shared/data (tests skip without it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelfn.registry import REPO_ROOT

SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
CIFAR_DIR = SHARED_DATA / "cifar-10-batches-py"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (CIFAR_DIR / "test_batch").is_file():
        pytest.skip(
            f"real CIFAR-10 sample not found at {CIFAR_DIR} (expected <repo>/../shared/data)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def cifar_dir(shared_data: Path) -> Path:
    return shared_data / "cifar-10-batches-py"


@pytest.fixture(scope="session")
def ptb_dir() -> Path:
    folder = SHARED_DATA / "ptb"
    if not (folder / "ptb.test.txt").is_file():
        pytest.skip(f"Penn Treebank not found at {folder} (expected <repo>/../shared/data/ptb)")
    return folder


@pytest.fixture(scope="session")
def imdb_dir() -> Path:
    folder = SHARED_DATA / "imdb"
    if not (folder / "test.csv").is_file():
        pytest.skip(f"IMDB CSV sample not found at {folder} (expected <repo>/../shared/data/imdb)")
    return folder
