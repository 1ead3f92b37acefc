"""Edge bundles of the session's tiny real artifacts, exported once and shared by the edge tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.export import ExportResult, export_bundle
from modelfn.registry import load_registry, parse_registry
from tests.support.text_models import SHARED_DATA
from tools.edge_test_data import load_test_data, user_test_data

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


# --- imported Hugging Face text models (tests/conftest.py), scored on the IMDB test CSV -----------

IMDB_CSV = SHARED_DATA / "imdb" / "test.csv"  # the Kaggle layout: review,sentiment
IMPORTED = parse_registry(
    '[models.imdb-bert]\ntask = "text-classification"\nimported = true\n\n'
    '[models.imdb-embedder]\ntask = "feature-extraction"\nimported = true\n'
)
IMPORTED_REVIEWS = 120  # reviews scored per export of an imported text model


@pytest.fixture(scope="session")
def imported_text_bundle(
    imported_text_classifier: Path, tmp_path_factory: pytest.TempPathFactory
) -> ExportResult:
    data = user_test_data(
        imported_text_classifier,
        IMDB_CSV,
        limit=IMPORTED_REVIEWS,
        text_column="review",
        label_column="sentiment",
    )
    out = tmp_path_factory.mktemp("imdb-bert-edge")
    return export_bundle(imported_text_classifier, out, IMPORTED.get("imdb-bert"), data)


@pytest.fixture(scope="session")
def imported_embedder_bundle(
    imported_embedder: Path, tmp_path_factory: pytest.TempPathFactory
) -> ExportResult:
    data = user_test_data(imported_embedder, IMDB_CSV, limit=IMPORTED_REVIEWS, text_column="review")
    out = tmp_path_factory.mktemp("imdb-embedder-edge")
    return export_bundle(imported_embedder, out, IMPORTED.get("imdb-embedder"), data)
