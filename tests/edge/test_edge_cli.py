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


def test_export_edge_scores_imported_text_models_on_the_users_csv(
    imported_text_classifier: Path,
    imported_embedder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import shutil

    from edge.bundle import read_bundle
    from tests.edge.conftest import IMDB_CSV

    registry = tmp_path / "models.toml"
    registry.write_text(
        '[models.imdb-bert]\ntask = "text-classification"\nimported = true\n\n'
        '[models.imdb-embedder]\ntask = "feature-extraction"\nimported = true\n'
        "[models.imdb-embedder.edge]\nmin_cosine_similarity = 0.999\n"
    )
    monkeypatch.setenv("MODELFN_REGISTRY", str(registry))
    store = LocalStore(tmp_path / "store")
    bert = publish_artifact(store, imported_text_classifier)
    embedder = publish_artifact(store, imported_embedder)
    reviews = tmp_path / "mine" / "reviews.csv"
    reviews.parent.mkdir()
    shutil.copyfile(IMDB_CSV, reviews)
    out = tmp_path / "out"
    base = ["--store", str(store.root), "--out", str(out)]
    columns = ["--text-column", "review", "--label-column", "sentiment"]
    assert main(["export-edge", "imdb-bert", *base, "--data", str(reviews), *columns]) == 0
    report = capsys.readouterr().out
    assert "  test data: your data: 560 texts from reviews.csv (sha256 " in report
    assert (
        "fp32_accuracy" in report and "int8 (dynamic) ships: int8 is within the threshold" in report
    )
    bundle = out / f"imdb-bert-{bert.version}.edge.tar.gz"
    edge, members = read_bundle(bundle)
    assert edge.parity["test_examples"] == 560 and "tokenizer.json" in members
    # The same rows give the same bundle, byte for byte, wherever the file is.
    first = bundle.read_bytes()
    shutil.copyfile(IMDB_CSV, tmp_path / "reviews.csv")
    again = ["export-edge", "imdb-bert", *base, "--data", str(tmp_path / "reviews.csv"), *columns]
    assert main(again) == 0 and bundle.read_bytes() == first
    assert main(["verify-bundle", str(bundle)]) == 0
    assert "self-test (int8): 3/3 agree" in capsys.readouterr().out

    # A feature extractor reads the text column alone, against its registry threshold.
    assert (
        main(
            [
                "export-edge",
                "imdb-embedder",
                *base,
                "--data",
                str(reviews),
                "--text-column",
                "review",
            ]
        )
        == 0
    )
    report = capsys.readouterr().out
    assert "cosine_min" in report and "neighbour_agreement" in report
    assert (
        "threshold: cosine similarity of every test text's int8 embedding to its fp32 one at least 0.999"
        in report
    )
    assert (out / f"imdb-embedder-{embedder.version}.edge.tar.gz").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["imdb-bert"], "give your labelled texts with --data FILE.csv (a header, a text column"),
        (["imdb-embedder"], "give your texts with --data FILE.csv (a header and a text column"),
        (
            ["imdb-embedder", "--data", "@csv", "--text-column", "review", "--label-column", "x"],
            (
                "imdb-embedder is a feature extractor: its figures compare the int8 embeddings with "
                "fp32's, so its CSV needs texts only; drop --label-column"
            ),
        ),
        (
            ["imported-vision", "--data", "@csv", "--text-column", "review"],
            (
                "--text-column and --label-column name the columns of an imported text model's CSV; "
                "imported-vision reads images: drop them"
            ),
        ),
        (
            ["imdb-bert", "--data", "@csv"],
            "no column 'text' or 'label' in the header ('review', 'sentiment')",
        ),
        (["imdb-embedder", "--data", "@folder"], "is a folder; for a text model give a CSV"),
        (
            ["imported-vision", "--data", "@csv"],
            "is a file; an image classifier's --data is a folder",
        ),
    ],
    ids=[
        "no-data",
        "no-data-embedder",
        "label-column",
        "text-column-images",
        "column",
        "folder",
        "csv-for-images",
    ],
)
def test_export_edge_refuses_what_does_not_fit_and_writes_nothing(
    argv: list[str],
    message: str,
    imported_text_classifier: Path,
    imported_embedder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from modelfn.artifact import ImagePreprocessing
    from tests.edge.conftest import IMDB_CSV
    from tests.support.imported import write_image_classifier
    from tests.support.manifests import CIFAR10_LABELS

    registry = tmp_path / "models.toml"
    registry.write_text(
        '[models.imdb-bert]\ntask = "text-classification"\nimported = true\n\n'
        '[models.imdb-embedder]\ntask = "feature-extraction"\nimported = true\n\n'
        '[models.imported-vision]\ntask = "image-classification"\nimported = true\n'
    )
    monkeypatch.setenv("MODELFN_REGISTRY", str(registry))
    store = LocalStore(tmp_path / "store")
    publish_artifact(store, imported_text_classifier)
    publish_artifact(store, imported_embedder)
    scheme = ImagePreprocessing(height=32, width=32, mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2))
    publish_artifact(store, write_image_classifier(tmp_path / "build", scheme, CIFAR10_LABELS)[0])
    (tmp_path / "photos" / "cat").mkdir(parents=True)
    where = {"@csv": str(IMDB_CSV), "@folder": str(tmp_path / "photos")}
    out = tmp_path / "out"
    argv = [where.get(a, a) for a in argv]
    assert main(["export-edge", *argv, "--store", str(store.root), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not out.exists()
