"""tools/edge_test_data.py on the user's data: an imported image classifier's test images and
int8 calibration images come from one labelled folder, disjoint, and say where they came from;
an imported Hugging Face text classifier's texts and labels, and a feature extractor's texts,
come from a CSV, checked against the version's tokenizer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from modelfn.artifact import ImagePreprocessing
from tests.support.imported import write_image_classifier, write_tensor_model
from tests.support.manifests import CIFAR10_LABELS
from tests.support.text_models import SHARED_DATA
from tests.support.user_data import cifar_test_images, write_label_folders
from tools.edge_test_data import user_test_data
from tools.user_data import UserDataError

SCHEME = ImagePreprocessing(
    height=32, width=32, resize=36, mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)
)


def test_calibration_images_are_held_out_and_never_scored(tmp_path: Path) -> None:
    images, labels, names = cifar_test_images(60)
    write_label_folders(tmp_path / "photos", images, labels, names, sizes=((32, 32), (64, 48)))
    folder, _ = write_image_classifier(tmp_path / "build", SCHEME, CIFAR10_LABELS)
    data = user_test_data(folder, tmp_path / "photos")
    assert data.images is not None and data.calibration is not None and data.labels is not None
    assert (len(data.images), len(data.calibration), len(data.labels)) == (48, 12, 48)
    # Decoded as the device decodes a file: RGB uint8 at the file's own size, not yet fitted.
    assert {p.shape for p in data.images} == {(32, 32, 3), (48, 64, 3)}
    assert all(p.dtype == np.uint8 for p in data.images)
    scored = {p.tobytes() for p in data.images}
    assert not any(p.tobytes() in scored for p in data.calibration)
    # Spread over the labels: the label-sorted order is sampled evenly, not its first rows.
    assert len({p.shape for p in data.calibration}) == 2
    assert data.source.startswith("your data: 60 images in 10 label folders of photos/ (sha256 ")
    assert data.source.endswith(
        "48 scored, 12 held out to calibrate int8 (evenly spaced over the labels, never scored)"
    )
    assert len(user_test_data(folder, tmp_path / "photos", limit=10).images or []) == 10


def test_a_tensor_model_or_a_single_image_is_refused(tmp_path: Path) -> None:
    images, labels, names = cifar_test_images(1)
    write_label_folders(tmp_path / "photos", images, labels, names)
    tensor = write_tensor_model(tmp_path / "build")
    with pytest.raises(UserDataError, match="imported-tensor is a tensor model"):
        user_test_data(tensor, tmp_path / "photos")
    folder, _ = write_image_classifier(tmp_path / "build", SCHEME, CIFAR10_LABELS)
    with pytest.raises(UserDataError, match="one image; export-edge needs at least 2"):
        user_test_data(folder, tmp_path / "photos")


IMDB_CSV = SHARED_DATA / "imdb" / "test.csv"


def test_a_text_classifiers_csv_scores_texts_and_labels(imported_text_classifier: Path) -> None:
    data = user_test_data(
        imported_text_classifier,
        IMDB_CSV,
        limit=40,
        text_column="review",
        label_column="sentiment",
    )
    assert data.texts is not None and data.labels is not None and data.calibration is None
    assert len(data.texts) == len(data.labels) == 40
    assert set(data.labels.tolist()) == {0, 1}  # negative, positive: the model's label order
    assert data.source.startswith("your data: 560 texts from test.csv (sha256 ")
    assert data.source.endswith("; 40 scored")


def test_a_feature_extractors_csv_needs_no_labels(imported_embedder: Path, tmp_path: Path) -> None:
    data = user_test_data(imported_embedder, IMDB_CSV, text_column="review")
    assert data.texts is not None and len(data.texts) == 560 and data.labels is None
    assert data.source.endswith("; 560 embedded by both graphs")
    with pytest.raises(
        UserDataError, match=r"no column 'text' in the header \('review', 'sentiment'"
    ):
        user_test_data(imported_embedder, IMDB_CSV)


def test_texts_over_the_maximum_are_refused_by_row_without_truncation(
    imported_embedder: Path, tmp_path: Path
) -> None:
    # The same version, as `modelfn import --no-truncation` would have recorded it.
    folder = tmp_path / imported_embedder.name
    shutil.copytree(imported_embedder, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["preprocessing"]["truncation"] = False
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        UserDataError,
        match=r"test.csv: row 2 \(\d+ tokens\), row 3 \(\d+ tokens\), .* and \d+ more over "
        r"imdb-embedder's maximum of 128 tokens; it was imported without truncation "
        r"\(modelfn import --no-truncation\), so a device refuses such a text: shorten or remove",
    ):
        user_test_data(folder, IMDB_CSV, text_column="review")


def test_an_image_folder_for_a_text_model_and_a_csv_for_an_image_model(
    imported_text_classifier: Path, tmp_path: Path
) -> None:
    (tmp_path / "photos" / "positive").mkdir(parents=True)
    with pytest.raises(UserDataError, match=r"photos is a folder; for a text model give a CSV"):
        user_test_data(imported_text_classifier, tmp_path / "photos")
    folder, _ = write_image_classifier(tmp_path / "build", SCHEME, CIFAR10_LABELS)
    with pytest.raises(UserDataError, match=r"test.csv is a file; an image classifier's --data"):
        user_test_data(folder, IMDB_CSV)
