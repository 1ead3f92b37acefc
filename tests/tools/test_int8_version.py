"""int8 in the cloud: the int8 graph becomes a file of a version before it is published, under the
model's threshold, or nothing is published (tools/int8_version.py, `modelfn quantize`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge import parity
from modelfn.artifact import (
    INT8_ONNX_FILE,
    MANIFEST_FILE,
    ONNX_FILE,
    Manifest,
    read_manifest,
    sha256_file,
    verify_artifact,
)
from modelfn.registry import load_registry
from modelfn.store import LocalStore, list_published, publish_artifact, read_alias
from tests.support.text_models import SHARED_DATA
from tools.cli import main
from tools.edge_test_data import load_test_data
from tools.int8_version import Int8Refused, add_int8_graph

REVIEWS = 120  # test reviews scored where a test calls the code, not the command: seconds


@pytest.fixture
def harsh_int8(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny model's int8 graph is as accurate as fp32, so a loss is made real: int8 is scored
    5 points lower than it is (as tests/edge/test_edge_parity.py does for the bundle)."""
    real_score = parity.score

    def harsh(bundle: object, data: parity.TestData) -> tuple[dict[str, float], object]:
        figures, labels = real_score(bundle, data)  # type: ignore[arg-type]
        if bundle.precision == "int8":  # type: ignore[attr-defined]
            figures = {"accuracy": figures["accuracy"] - 0.05}
        return figures, labels

    monkeypatch.setattr(parity, "score", harsh)


def published_for_quantize(
    artifact: Path, tmp_path: Path
) -> tuple[LocalStore, Manifest, list[str]]:
    """A store holding `artifact`, its published manifest, and `modelfn quantize`'s arguments
    for it (its model, that store, an output folder)."""
    store = LocalStore(tmp_path / "store")
    source = publish_artifact(store, artifact)
    argv = ["quantize", source.name, "--store", str(store.root), "--out", str(tmp_path / "out")]
    return store, source, argv


def test_quantize_publishes_a_new_version_with_the_int8_graph_and_its_record(
    imdb_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, source, argv = published_for_quantize(imdb_artifact, tmp_path)
    assert main([*argv, "--data", str(SHARED_DATA)]) == 0
    out = capsys.readouterr().out
    assert "int8 (dynamic" in out and "within the threshold" in out and "published" in out

    version = read_alias(store, "imdb-sentiment", "latest").version
    assert version != source.version and version.endswith(source.version[-8:])
    folder = tmp_path / "out" / "imdb-sentiment" / version
    manifest = verify_artifact(folder)  # every file, the int8 graph's sha256 among them
    assert manifest.files[INT8_ONNX_FILE].sha256 == sha256_file(folder / INT8_ONNX_FILE)
    assert set(manifest.files) == set(source.files) | {INT8_ONNX_FILE}
    assert all(manifest.files[name] == entry for name, entry in source.files.items())
    record = manifest.quantization
    assert record is not None and record.mode == "dynamic"
    assert record.source_version == source.version
    assert "imdb test split" in record.test_data and "1.00 points" in record.threshold
    figures = record.figures
    assert figures["int8_graph_bytes"] == manifest.files[INT8_ONNX_FILE].size
    assert figures["fp32_graph_bytes"] == manifest.files[ONNX_FILE].size
    assert figures["fp32_accuracy"] - figures["int8_accuracy"] <= 0.01
    # The source version is untouched (immutable) and both are published.
    (published,) = list_published(store)
    assert published.versions == sorted([source.version, version])
    assert (
        store.get_bytes(f"imdb-sentiment/{source.version}/{MANIFEST_FILE}")
        == (imdb_artifact / MANIFEST_FILE).read_bytes()
    )
    # A version that has its int8 graph is not quantized twice.
    assert main([*argv, "--version", version, "--data", str(SHARED_DATA)]) == 2
    assert "already has model.int8.onnx" in capsys.readouterr().err


def test_quantize_past_the_threshold_publishes_nothing_and_gives_the_figures(
    imdb_artifact: Path, tmp_path: Path, harsh_int8: None, capsys: pytest.CaptureFixture[str]
) -> None:
    store, source, argv = published_for_quantize(imdb_artifact, tmp_path)
    assert main([*argv, "--data", str(SHARED_DATA)]) == 2
    err = capsys.readouterr().err
    assert "int8 refused, nothing published" in err and "5.00 points below" in err
    assert "fp32_accuracy" in err and "int8_accuracy" in err and "label_agreement" in err
    assert "[models.imdb-sentiment.edge] max_accuracy_drop" in err
    assert 'precision = "fp32"' in err
    (published,) = list_published(store)
    assert published.versions == [source.version]
    assert read_alias(store, "imdb-sentiment", "latest").version == source.version
    assert not list((tmp_path / "out").rglob(INT8_ONNX_FILE))


def test_a_fresh_version_gains_its_int8_graph_before_it_is_published(
    imdb_artifact: Path, tmp_path: Path
) -> None:
    """`modelfn train` of a model at precision int8: the unpublished build folder, same version."""
    folder = shutil.copytree(imdb_artifact, tmp_path / imdb_artifact.name)
    entry = load_registry().get("imdb-sentiment")
    before = read_manifest(folder)
    manifest = add_int8_graph(folder, entry, load_test_data(entry, SHARED_DATA, limit=REVIEWS))
    assert manifest.version == before.version and manifest == verify_artifact(folder)
    assert manifest.quantization is not None and manifest.quantization.source_version is None
    assert "120 texts" in manifest.quantization.test_data
    assert not list(folder.glob(".*"))  # the manifest was replaced, no staged copy left


def test_a_fresh_version_past_the_threshold_is_left_as_it_was(
    imdb_artifact: Path, tmp_path: Path, harsh_int8: None
) -> None:
    folder = shutil.copytree(imdb_artifact, tmp_path / imdb_artifact.name)
    entry = load_registry().get("imdb-sentiment")
    with pytest.raises(Int8Refused, match="nothing published.*5.00 points below"):
        add_int8_graph(folder, entry, load_test_data(entry, SHARED_DATA, limit=REVIEWS))
    assert (folder / MANIFEST_FILE).read_bytes() == (imdb_artifact / MANIFEST_FILE).read_bytes()
    assert not (folder / INT8_ONNX_FILE).exists()


def test_train_of_a_model_at_precision_int8_publishes_its_int8_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from modelfn.registry import REPO_ROOT

    registry = tmp_path / "models.toml"
    text = (REPO_ROOT / "models.toml").read_text()
    serving = "[models.imdb-sentiment.serving]\n"
    registry.write_text(text.replace(serving, serving + 'precision = "int8"\n'))
    monkeypatch.setenv("MODELFN_REGISTRY", str(registry))
    store = tmp_path / "store"
    argv = ["train", "imdb-sentiment", "--data", str(SHARED_DATA), "--preset", "tiny"]
    argv += ["--publish", str(store), "--out", str(tmp_path / "build"), "--quiet"]
    argv += ["--runs", str(tmp_path / "runs")]
    assert main(argv) == 0
    assert "int8 (dynamic" in capsys.readouterr().out
    [model] = list_published(LocalStore(store))
    manifest = verify_artifact(store / "imdb-sentiment" / model.versions[0])
    assert manifest.quantization is not None and manifest.quantization.source_version is None
    assert "imdb test split (560 texts)" in manifest.quantization.test_data
