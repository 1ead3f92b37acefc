"""tools/evaluate.py on an imported model: refused by name without data of its own; scored on the
user's labelled data through the handler with it (tools/user_evaluation.py)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelfn.artifact import ImagePreprocessing
from modelfn.registry import RegistryError
from modelfn.store import LocalStore, publish_artifact
from tests.support.imported import write_image_classifier, write_tensor_model
from tests.support.manifests import CIFAR10_LABELS
from tests.support.text_models import SHARED_DATA
from tests.support.user_data import cifar_test_images, write_label_folders
from tools.evaluate import served_metrics
from tools.user_data import UserDataError
from tools.user_evaluation import requests, user_data_metrics


def test_an_imported_model_has_no_data_set_to_evaluate_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = tmp_path / "models.toml"
    registry.write_text('[models.imported-tensor]\ntask = "tensor"\nimported = true\n')
    monkeypatch.setenv("MODELFN_REGISTRY", str(registry))
    with pytest.raises(RegistryError, match="imported-tensor was imported"):
        served_metrics("imported-tensor", LocalStore(tmp_path / "store"))


# --- an imported model on the user's own labelled data -----------------------------------------

SCHEME = ImagePreprocessing(
    height=32, width=32, resize=36, mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)
)


@pytest.fixture
def imported_vision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[LocalStore, Any]:
    """An imported image classifier (a linear graph over a resize + crop scheme, with its numpy
    twin) published to a store and registered as `imported = true`."""
    registry = tmp_path / "models.toml"
    registry.write_text(
        '[models.imported-vision]\ntask = "image-classification"\nimported = true\n\n'
        '[models.imported-tensor]\ntask = "tensor"\nimported = true\n'
    )
    monkeypatch.setenv("MODELFN_REGISTRY", str(registry))
    store = LocalStore(tmp_path / "store")
    folder, graph = write_image_classifier(tmp_path / "build", SCHEME, CIFAR10_LABELS)
    publish_artifact(store, folder)
    publish_artifact(store, write_tensor_model(tmp_path / "build"))
    return store, graph


def expected_figures(graph: Any, files: list[Path]) -> dict[str, float]:
    """The figures computed here, without the handler: each file as the client sends it, the
    function's pre-processing, the graph's numpy twin, training's metrics."""
    from functions.tasks.image_classification import preprocess
    from training.metrics import classification_report

    tensors = preprocess([base64.b64encode(f.read_bytes()).decode() for f in files], SCHEME)
    predicted = graph.logits(tensors).argmax(axis=1)
    truth = np.asarray([CIFAR10_LABELS.index(f.parent.name) for f in files])
    figures: dict[str, float] = classification_report(truth, predicted, 10).figures(CIFAR10_LABELS)
    return figures


def test_an_imported_classifier_is_scored_on_a_folder_per_label_through_the_handler(
    imported_vision: tuple[LocalStore, Any], tmp_path: Path
) -> None:
    store, graph = imported_vision
    images, labels, names = cifar_test_images(40)
    # Photos of several sizes, PNG and JPEG: the function resizes and crops each.
    files = write_label_folders(
        tmp_path / "photos", images, labels, names, sizes=((32, 32), (64, 48), (40, 56))
    )
    result = user_data_metrics("imported-vision", store, tmp_path / "photos")
    assert result.figures() == pytest.approx(expected_figures(graph, files), abs=1e-12)
    assert int(result.report.support.sum()) == 40
    assert result.data.startswith(f"40 images in 10 label folders of {tmp_path / 'photos'}")
    assert result.absent == [] and result.manifest.metrics == {}


def test_requests_stay_within_the_functions_batch_and_size_limits() -> None:
    from functions.limits import MAX_BATCH

    assert list(requests([1] * (MAX_BATCH + 3), 10**9)) == [
        list(range(MAX_BATCH)),
        list(range(MAX_BATCH, MAX_BATCH + 3)),
    ]
    # A size budget splits earlier; an example over it alone goes alone (the function says why).
    assert list(requests([4, 4, 4, 20, 1], 10)) == [[0, 1], [2], [3], [4]]


def test_an_image_the_function_refuses_is_named_with_the_functions_reason(
    imported_vision: tuple[LocalStore, Any], tmp_path: Path
) -> None:
    from PIL import Image

    from functions.limits import MAX_PIXELS

    store, _ = imported_vision
    images, labels, names = cifar_test_images(4)
    write_label_folders(tmp_path / "photos", images, labels, names)
    # Over the function's decoded-pixel limit, yet a small file: one flat colour.
    huge = tmp_path / "photos" / "cat" / "huge.png"
    Image.new("RGB", (4097, 4096), (90, 60, 30)).save(huge)
    assert 4097 * 4096 > MAX_PIXELS
    with pytest.raises(UserDataError, match=r"huge.png: the function answered 4\d\d: .*pixels"):
        user_data_metrics("imported-vision", store, tmp_path / "photos")


def test_the_cli_prints_the_figures_beside_what_the_version_recorded(
    imported_vision: tuple[LocalStore, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tools.cli import main

    store, graph = imported_vision
    images, labels, names = cifar_test_images(24)
    keep = np.isin(labels, [names.index("cat"), names.index("ship")])
    files = write_label_folders(tmp_path / "photos", images[keep], labels[keep], names)
    base = ["evaluate", "imported-vision", "--store", str(store.root)]
    assert main([*base, "--data", str(tmp_path / "photos")]) == 0
    printed = capsys.readouterr()
    out = printed.out
    # The report alone on stdout: the function's JSON log and metrics lines went to stderr.
    assert out.startswith("imported-vision (") and '"level"' not in out and '"_aws"' not in out
    assert '"message":"model loaded"' in printed.err
    expected = expected_figures(graph, files)
    assert f"  accuracy {expected['accuracy']:>18.4f} {'-':>10}" in out
    assert f"  macro_f1 {expected['macro_f1']:>18.4f} {'-':>10}" in out
    count = int((labels[keep] == names.index("cat")).sum())
    assert f"  cat {count:>21} {expected['precision.cat']:>10.4f}" in out
    assert "8 of the model's 10 labels have no example here (airplane, automobile, bird" in out
    assert "recorded: nothing; an imported version records no test figures" in out
    # Without data, on a tensor model, and on a folder that does not fit: one line, exit 2.
    assert main(base) == 2
    assert "give your labelled data with --data PATH" in capsys.readouterr().err
    (tmp_path / "photos" / "kitten").mkdir()
    assert main([*base, "--data", str(tmp_path / "photos")]) == 2
    assert "'kitten' is not a label of this model" in capsys.readouterr().err
    tensor = ["evaluate", "imported-tensor", "--store", str(store.root), "--data", str(tmp_path)]
    assert main(tensor) == 2
    assert (
        "imported-tensor is a tensor model: its outputs carry no labels" in capsys.readouterr().err
    )


def test_a_text_classifier_on_a_csv_gives_the_figures_training_recorded(
    imdb_artifact: Path, tmp_path: Path
) -> None:
    # The CSV reader and the text path, checked against a claim made elsewhere: the tiny IMDB
    # model's recorded test figures come from training's reader of this same Kaggle CSV.
    csv_file = SHARED_DATA / "imdb" / "test.csv"
    store = LocalStore(tmp_path / "store")
    manifest = publish_artifact(store, imdb_artifact)
    result = user_data_metrics(
        "imdb-sentiment", store, csv_file, text_column="review", label_column="sentiment"
    )
    for metric in ("accuracy", "macro_f1", "recall.positive"):
        assert result.figures()[metric] == pytest.approx(manifest.metrics[metric], rel=1e-6)
    assert result.data.startswith(f"560 texts from {csv_file}")
