"""An edge bundle of an imported image classifier gives the function's inputs and answers.

The bundle's run.py replays the image scheme without modelfn (edge/standalone_runner.py); here
it is held equal to the function's (modelfn/images.py) on real CIFAR-10 test
images upscaled to 64x48 and 48x64, for each part of the scheme: resize + centre crop (and the
zero padding of a crop wider than the image), filters, scale, channel order and layout. Then a
whole bundle of an imported classifier (tests/support/imported.py) is exported, and its run.py,
run as a device runs it, answers a PNG as the Lambda handler does.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from edge import parity
from edge.bundle import RUNNER_FILE, extract_bundle
from edge.export import export_bundle
from edge.standalone_runner import fit_pixels, image_tensor, load_image
from functions.tasks.image_classification import preprocess
from modelfn.artifact import ArtifactError, ImagePreprocessing
from modelfn.registry import parse_registry
from tests.functions.conftest import call, handler_for
from tests.modelfn.test_images import upscaled
from tests.support.imported import write_image_classifier, write_tensor_model
from tests.support.manifests import CIFAR10_LABELS
from tests.support.text_models import SHARED_DATA

BASE = ImagePreprocessing(
    height=32, width=32, resize=40, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
)
SCHEMES = {
    "bilinear-crop": BASE,
    "bicubic-nhwc-bgr": BASE.model_copy(
        update={"interpolation": "bicubic", "layout": "NHWC", "channel_order": "BGR"}
    ),
    "nearest-oblong-crop": BASE.model_copy(
        update={"interpolation": "nearest", "height": 27, "width": 35, "resize": 36}
    ),
    "padded-crop": BASE.model_copy(update={"height": 32, "width": 44, "resize": 32}),
    "straight-scale": BASE.model_copy(
        update={"resize": None, "height": 24, "width": 28, "scale": 1 / 127.5, "mean": (1, 1, 1)}
    ),
}
REGISTRY = """
[models.imported-vision]
task = "image-classification"
imported = true
"""


@pytest.fixture(scope="module")
def cifar() -> tuple[NDArray[np.uint8], NDArray[np.int64], NDArray[np.uint8]]:
    """Real CIFAR-10 test images and labels, and training images to calibrate int8 on."""
    folder = SHARED_DATA / "cifar-10-batches-py"
    if not (folder / "test_batch").is_file():
        pytest.skip(f"CIFAR-10 not found in {folder}")
    from training.data.cifar10 import load_cifar10

    data = load_cifar10(folder)
    return (
        data.test.images[:100].transpose(0, 2, 3, 1),
        data.test.labels[:100],
        data.train.images[:64].transpose(0, 2, 3, 1),
    )


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_runners_tensor_is_the_functions(
    cifar: tuple[NDArray[np.uint8], NDArray[np.int64], NDArray[np.uint8]], scheme: str
) -> None:
    spec = SCHEMES[scheme]
    images = cifar[0][:12]
    for size in ((64, 48), (48, 64)):
        pngs = upscaled(images, *size)
        function = preprocess([base64.b64encode(p).decode() for p in pngs], spec)
        runner = np.concatenate(
            [
                image_tensor(fit_pixels(load_image(p), spec.model_dump()), spec.model_dump())
                for p in pngs
            ]
        )
        assert runner.shape == function.shape and np.array_equal(runner, function), (scheme, size)
    # Pixel arrays (how the exporter scores test images) go through the same scheme.
    arrays = [np.asarray(p) for p in images]
    function = preprocess([a.tolist() for a in arrays], spec)
    runner = np.concatenate(
        [image_tensor(fit_pixels(a, spec.model_dump()), spec.model_dump()) for a in arrays]
    )
    assert np.array_equal(runner, function), scheme


def test_a_bundle_of_an_imported_classifier_answers_as_the_function(
    cifar: tuple[NDArray[np.uint8], NDArray[np.int64], NDArray[np.uint8]], tmp_path: Path
) -> None:
    images, labels, calibration = cifar
    spec = SCHEMES["bicubic-nhwc-bgr"]
    folder, _ = write_image_classifier(tmp_path / "build", spec, CIFAR10_LABELS)
    entry = parse_registry(REGISTRY).get("imported-vision")
    data = parity.TestData(images=images, labels=labels, calibration=calibration)
    result = export_bundle(folder, tmp_path / "out", entry, data)
    assert result.manifest.preprocessing == spec and result.manifest.graphs.fp32
    bundle = extract_bundle(result.path, tmp_path / "device")
    png = tmp_path / "cat.png"
    png.write_bytes(upscaled(images[:1], 64, 48)[0])
    done = subprocess.run(
        [sys.executable, str(bundle / RUNNER_FILE), "--json", "--fp32", "--top-k", "3", str(png)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    device = json.loads(done.stdout)
    handler = handler_for(folder, tmp_path)
    body = {"inputs": [base64.b64encode(png.read_bytes()).decode()], "parameters": {"top_k": 3}}
    (served,) = call(handler, "POST", "/models/imported-vision/predict", body).json()["outputs"]
    assert [t["label"] for t in device["top_k"]] == [t["label"] for t in served["top_k"]]
    assert [t["score"] for t in device["top_k"]] == pytest.approx(
        [t["score"] for t in served["top_k"]], abs=1e-5
    )
    self_test = subprocess.run(
        [sys.executable, str(bundle / RUNNER_FILE), "--self-test"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert self_test.returncode == 0, self_test.stderr


def test_a_tensor_model_has_no_edge_bundle(tmp_path: Path) -> None:
    folder = write_tensor_model(tmp_path)
    entry = parse_registry(REGISTRY.replace("image-classification", "tensor")).get(
        "imported-vision"
    )
    with pytest.raises(ArtifactError, match="nothing it could feed the graph"):
        export_bundle(folder, tmp_path / "out", entry, parity.TestData())
