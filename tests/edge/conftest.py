"""Edge bundles of the session's tiny real artifacts, exported once and shared by the edge tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.export import ExportResult, export_bundle
from modelfn.registry import load_registry
from tests.support.text_models import SHARED_DATA
from tools.edge_test_data import load_test_data

# Test examples scored per export: enough for real figures, few enough for seconds.
LIMITS = {"cifar10-cnn": 200, "imdb-sentiment": 120, "ptb-lstm": 300}


def export(name: str, artifact: Path, out: Path, **kwargs: object) -> ExportResult:
    entry = load_registry().get(name)
    data = load_test_data(entry, SHARED_DATA, limit=LIMITS[name])
    return export_bundle(artifact, out, entry, data, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def cifar_bundle(cifar_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    return export("cifar10-cnn", cifar_artifact, tmp_path_factory.mktemp("cifar-edge"))


@pytest.fixture(scope="session")
def imdb_bundle(imdb_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    return export("imdb-sentiment", imdb_artifact, tmp_path_factory.mktemp("imdb-edge"))


@pytest.fixture(scope="session")
def ptb_bundle(ptb_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    return export("ptb-lstm", ptb_artifact, tmp_path_factory.mktemp("ptb-edge"))
