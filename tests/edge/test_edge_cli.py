"""`modelfn export-edge` end to end: fetch from a store, export, report, publish once."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.publish import RECORD_FILE, edge_prefix
from modelfn.store import LocalStore, publish_artifact
from tests.support.text_models import SHARED_DATA
from tools.cli import main


def test_export_edge_reports_and_publishes(
    imdb_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    manifest = publish_artifact(store, imdb_artifact)
    argv = [
        "export-edge",
        "imdb-sentiment",
        "--store",
        str(store.root),
        "--out",
        str(tmp_path / "out"),
    ]
    argv += ["--data", str(SHARED_DATA), "--publish"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "fp32_accuracy" in out and "latency_ms fp32/int8" in out and "published" in out
    stem = f"imdb-sentiment-{manifest.version}"
    assert (tmp_path / "out" / f"{stem}.edge.tar.gz").is_file()
    assert (tmp_path / "out" / f"{stem}.latency.json").is_file()
    assert store.exists(f"{edge_prefix('imdb-sentiment', manifest.version)}/{RECORD_FILE}")
    assert main(argv) == 2
    assert "already published" in capsys.readouterr().err


def test_export_edge_names_a_bad_version() -> None:
    assert main(["export-edge", "imdb-sentiment", "--version", "v1"]) == 2
