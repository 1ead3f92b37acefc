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


def test_export_edge_scores_an_imported_classifier_on_the_users_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.bundle import read_bundle
    from modelfn.artifact import ImagePreprocessing
    from tests.support.imported import write_image_classifier, write_tensor_model
    from tests.support.manifests import CIFAR10_LABELS
    from tests.support.user_data import cifar_test_images, write_label_folders

    registry = tmp_path / "models.toml"
    registry.write_text(
        '[models.imported-vision]\ntask = "image-classification"\nimported = true\n\n'
        '[models.imported-tensor]\ntask = "tensor"\nimported = true\n'
    )
    monkeypatch.setenv("MODELFN_REGISTRY", str(registry))
    store = LocalStore(tmp_path / "store")
    scheme = ImagePreprocessing(
        height=32, width=32, resize=36, mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26)
    )
    folder, _ = write_image_classifier(tmp_path / "build", scheme, CIFAR10_LABELS)
    manifest = publish_artifact(store, folder)
    publish_artifact(store, write_tensor_model(tmp_path / "build"))
    images, labels, names = cifar_test_images(50)
    write_label_folders(tmp_path / "photos", images, labels, names, sizes=((32, 32), (40, 56)))
    base = ["--store", str(store.root), "--out", str(tmp_path / "out")]
    argv = ["export-edge", "imported-vision", *base, "--data", str(tmp_path / "photos")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    where = "your data: 50 images in 10 label folders of photos/ (sha256 "
    assert f"  test data: {where}" in out
    assert (
        "40 scored, 10 held out to calibrate int8 (evenly spaced over the labels, never scored)"
        in out
    )
    bundle = tmp_path / "out" / f"imported-vision-{manifest.version}.edge.tar.gz"
    edge, _ = read_bundle(bundle)
    assert edge.test_data.startswith(where) and edge.parity["test_examples"] == 40
    assert edge.quantization.mode == "static-qdq"
    # The same data gives the same bundle, byte for byte.
    first = bundle.read_bytes()
    assert main(argv) == 0 and bundle.read_bytes() == first
    capsys.readouterr()
    # Without --data, and for a tensor model: one line each, exit 2.
    assert main(["export-edge", "imported-vision", *base]) == 2
    assert "give your labelled images with --data PATH" in capsys.readouterr().err
    tensor = ["export-edge", "imported-tensor", *base, "--data", str(tmp_path / "photos")]
    assert main(tensor) == 2
    assert "imported tensor model: an edge bundle's runner takes images or texts" in (
        capsys.readouterr().err
    )
