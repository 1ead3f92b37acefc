"""Serving replays training's pre-processing exactly, on real CIFAR-10 test images.

Training normalises with `training.image_classification.normalise` and records the mean and std
it used in the manifest (`training.recipe.DATASETS[...].preprocessing`); the functions read them back from the
manifest's JSON and normalise with `functions.tasks.image_classification`. The two must agree on
the same pixels, whether a client sends them as arrays or as PNG files.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from functions.limits import MAX_BATCH
from functions.tasks import image_classification as serving
from modelfn.artifact import ImagePreprocessing
from modelfn.registry import load_registry
from tests.functions.conftest import MODEL, encode_image
from training import image_classification as training  # imports torch: fine in tests/
from training.data import cifar10
from training.recipe import DATASETS

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"
IMAGES = 256  # real test images per comparison (at most), sent MAX_BATCH per request
TOLERANCE = 1e-6  # float32 rounding between torch and numpy; a wrong mean/std/order is >1e-3


@pytest.fixture(scope="module")
def cifar() -> cifar10.Cifar10:
    entry = load_registry().get(MODEL)
    folder = DATA_DIR / entry.data_subdir
    if not (folder / "test_batch").is_file():
        pytest.skip(f"CIFAR-10 not found at {folder}; put the python version there to run this")
    data: cifar10.Cifar10 = DATASETS[entry.dataset].load(folder)
    return data


@pytest.fixture(scope="module")
def recorded(cifar: cifar10.Cifar10) -> ImagePreprocessing:
    """What training records in the manifest, as the functions read it back from JSON."""
    pre = DATASETS[load_registry().get(MODEL).dataset].preprocessing(cifar)
    assert (pre.mean, pre.std) == (cifar10.MEAN, cifar10.STD)
    return ImagePreprocessing.model_validate_json(pre.model_dump_json())


def trained_on(images: NDArray[np.uint8], pre: ImagePreprocessing) -> NDArray[np.float32]:
    """Training's input for uint8 NCHW images."""
    return np.asarray(training.normalise(images, pre).numpy())


def served(items: list[object], pre: ImagePreprocessing) -> NDArray[np.float32]:
    """Serving's input for request items, sent MAX_BATCH per request as a client must."""
    return np.concatenate(
        [serving.preprocess(items[i : i + MAX_BATCH], pre) for i in range(0, len(items), MAX_BATCH)]
    )


def as_hwc(images: NDArray[np.uint8]) -> Iterator[NDArray[np.uint8]]:
    """NCHW (the data set's layout) -> one HxWx3 image at a time (a client's layout)."""
    yield from images.transpose(0, 2, 3, 1)


def test_pixel_arrays_are_served_as_training_normalised_them(
    cifar: cifar10.Cifar10, recorded: ImagePreprocessing
) -> None:
    images = cifar.test.images[:IMAGES]
    want = trained_on(images, recorded)
    got = served([image.tolist() for image in as_hwc(images)], recorded)
    assert got.shape == want.shape == (len(images), 3, 32, 32) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE)


def test_png_files_are_served_as_training_normalised_their_pixels(
    cifar: cifar10.Cifar10, recorded: ImagePreprocessing
) -> None:
    images = cifar.test.images[:IMAGES]
    want = trained_on(images, recorded)
    got = served([encode_image(image) for image in as_hwc(images)], recorded)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE)


def test_the_comparison_notices_a_wrong_normalisation(
    cifar: cifar10.Cifar10, recorded: ImagePreprocessing
) -> None:
    # The check above can fail: swapping two channels' statistics is far outside the tolerance.
    images = cifar.test.images[:MAX_BATCH]
    swapped = recorded.model_copy(update={"mean": recorded.mean[::-1]})
    got = served([image.tolist() for image in as_hwc(images)], swapped)
    assert np.abs(got - trained_on(images, recorded)).max() > 1e3 * TOLERANCE
