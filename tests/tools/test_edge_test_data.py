"""tools/edge_test_data.py on the user's data: an imported image classifier's test images and
int8 calibration images come from one labelled folder, disjoint, and say where they came from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelfn.artifact import ImagePreprocessing, read_manifest
from tests.support.imported import write_image_classifier, write_tensor_model
from tests.support.manifests import CIFAR10_LABELS
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
    data = user_test_data(read_manifest(folder), tmp_path / "photos")
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
    assert (
        len(user_test_data(read_manifest(folder), tmp_path / "photos", limit=10).images or []) == 10
    )


def test_a_tensor_model_or_a_single_image_is_refused(tmp_path: Path) -> None:
    images, labels, names = cifar_test_images(1)
    write_label_folders(tmp_path / "photos", images, labels, names)
    tensor = write_tensor_model(tmp_path / "build")
    with pytest.raises(UserDataError, match="imported-tensor is a tensor model"):
        user_test_data(read_manifest(tensor), tmp_path / "photos")
    folder, _ = write_image_classifier(tmp_path / "build", SCHEME, CIFAR10_LABELS)
    with pytest.raises(UserDataError, match="one image; export-edge needs at least 2"):
        user_test_data(read_manifest(folder), tmp_path / "photos")
