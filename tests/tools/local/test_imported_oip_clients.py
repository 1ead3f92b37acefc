"""NVIDIA's tritonclient against imported models under the local deployment, as a user runs it.

A registry of two `imported = true` entries (a tensor model and an image classifier with a
resize + crop scheme, tests/support/imported.py) is served by `local_deployment`: moto S3, a
function process per model, the gateway. tritonclient talks to the gateway with its defaults
(binary tensor data) and with binary_data=False; every answer is the graphs' numpy twins'.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from modelfn.artifact import ImagePreprocessing
from modelfn.registry import parse_registry
from modelfn.store import LocalStore, publish_artifact
from tests.support.imported import (
    ImageGraph,
    tensor_twin,
    write_image_classifier,
    write_tensor_model,
)
from tests.support.manifests import CIFAR10_LABELS
from tools.local.deployment import LocalDeployment, local_deployment

httpclient = pytest.importorskip(
    "tritonclient.http", reason="tritonclient[http] is a dev dependency"
)

REGISTRY = """
[models.imported-tensor]
task = "tensor"
imported = true

[models.imported-vision]
task = "image-classification"
imported = true
"""
SPEC = ImagePreprocessing(
    height=24, width=24, resize=28, layout="NHWC", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)
)


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LocalDeployment, ImageGraph]]:
    root = tmp_path_factory.mktemp("imported-oip")
    store = LocalStore(root / "store")
    vision, graph = write_image_classifier(root / "build", SPEC, CIFAR10_LABELS)
    for folder in (write_tensor_model(root / "build"), vision):
        publish_artifact(store, folder)
    with local_deployment(parse_registry(REGISTRY), store, log_dir=None) as running:
        yield running, graph


@pytest.fixture(scope="module")
def client(deployment: tuple[LocalDeployment, ImageGraph]) -> Iterator[Any]:
    url = deployment[0].url.removeprefix("http://")
    triton = httpclient.InferenceServerClient(
        url=url, network_timeout=60.0, connection_timeout=60.0
    )
    yield triton
    triton.close()


def test_metadata_of_a_tensor_model(client: Any) -> None:
    assert client.is_model_ready("imported-tensor")
    meta = client.get_model_metadata("imported-tensor")
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == [
        ("input.1", "FP32", [-1, 4]),
        ("offset", "INT64", [-1]),
    ]
    assert [t["name"] for t in meta["outputs"]] == ["y", "norm"]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_named_tensors_in_and_out(client: Any, binary: bool) -> None:
    x = np.random.default_rng(3).normal(size=(5, 4)).astype(np.float32)
    offset = np.arange(5, dtype=np.int64) - 2
    inputs = [
        httpclient.InferInput("input.1", list(x.shape), "FP32"),
        httpclient.InferInput("offset", list(offset.shape), "INT64"),
    ]
    inputs[0].set_data_from_numpy(x, binary_data=binary)
    inputs[1].set_data_from_numpy(offset, binary_data=binary)
    want = tensor_twin(x, offset)
    # The client's default: no outputs named, so every output, as binary data.
    result = client.infer("imported-tensor", inputs)
    np.testing.assert_allclose(result.as_numpy("y"), want["y"], atol=1e-5)
    np.testing.assert_allclose(result.as_numpy("norm"), want["norm"], atol=1e-5)
    asked = [httpclient.InferRequestedOutput("norm", binary_data=binary)]
    only = client.infer("imported-tensor", inputs, outputs=asked)
    assert only.as_numpy("y") is None
    np.testing.assert_allclose(only.as_numpy("norm"), want["norm"], atol=1e-5)


def test_an_nhwc_image_tensor(client: Any, deployment: tuple[LocalDeployment, ImageGraph]) -> None:
    _, graph = deployment
    x = np.random.default_rng(4).normal(size=(2, 24, 24, 3)).astype(np.float32)
    tensor = httpclient.InferInput("pixel_values", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    scores = client.infer("imported-vision", [tensor]).as_numpy("scores")
    np.testing.assert_allclose(scores, graph.logits(x), atol=1e-4)


def test_a_client_mistake_is_an_exception_naming_it(client: Any) -> None:
    from tritonclient.utils import InferenceServerException

    tensor = httpclient.InferInput("input.1", [1, 4], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 4), np.float32))
    with pytest.raises(InferenceServerException, match=r"inputs: missing \['offset'\]"):
        client.infer("imported-tensor", [tensor])
