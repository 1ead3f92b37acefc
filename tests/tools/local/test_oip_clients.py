"""NVIDIA's tritonclient, as a new user would run it, against `modelfn serve` for all three models.

The local deployment (moto S3 server, a function process per model, the HTTP gateway) serves a
CIFAR-10 graph, a real tiny imdb-sentiment and a real tiny ptb-lstm; tritonclient talks to the
gateway with its defaults (binary tensor data, no content type) and with binary_data=False.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelfn.registry import load_registry
from modelfn.store import LocalStore, publish_artifact
from tests.support.manifests import linear_onnx_graph, write_artifact
from tools.local.deployment import LocalDeployment, local_deployment

httpclient = pytest.importorskip(
    "tritonclient.http", reason="tritonclient[http] is a dev dependency"
)

MODELS = ["cifar10-cnn", "imdb-sentiment", "ptb-lstm"]


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, ptb_artifact: Path, imdb_artifact: Path
) -> Iterator[tuple[LocalDeployment, np.ndarray, np.ndarray]]:
    root = tmp_path_factory.mktemp("oip-clients")
    graph, weight, bias = linear_onnx_graph()
    store = LocalStore(root / "store")
    for folder in (write_artifact(root / "build", onnx=graph), ptb_artifact, imdb_artifact):
        publish_artifact(store, folder)
    with local_deployment(load_registry(), store, models=MODELS) as running:
        yield running, weight, bias


@pytest.fixture(scope="module")
def client(deployment: tuple[LocalDeployment, Any, Any]) -> Iterator[Any]:
    url = deployment[0].url.removeprefix("http://")
    triton = httpclient.InferenceServerClient(
        url=url, network_timeout=60.0, connection_timeout=60.0
    )
    yield triton
    triton.close()


def test_server_and_model_metadata(client: Any) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    for name in MODELS:
        assert client.is_model_ready(name)
        meta = client.get_model_metadata(name)
        assert meta["name"] == name and meta["inputs"] and meta["outputs"]
        assert all(
            {"name", "datatype", "shape"} <= set(t) for t in meta["inputs"] + meta["outputs"]
        )


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_cifar_fp32_tensor(
    client: Any, deployment: tuple[LocalDeployment, Any, Any], binary: bool
) -> None:
    _, weight, bias = deployment
    x = np.random.default_rng(2).normal(size=(2, 3, 32, 32)).astype(np.float32)
    tensor = httpclient.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary)
    outputs = [httpclient.InferRequestedOutput("logits", binary_data=binary)]
    logits = client.infer("cifar10-cnn", [tensor], outputs=outputs).as_numpy("logits")
    np.testing.assert_allclose(logits, x.reshape(2, -1) @ weight + bias, atol=1e-3)
    # The client's default: no outputs named, so it asks for every output as binary data.
    default = client.infer("cifar10-cnn", [tensor]).as_numpy("logits")
    np.testing.assert_array_equal(default, logits)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_imdb_strings_in_labels_out(client: Any, binary: bool) -> None:
    texts = np.array([b"a truly wonderful film, a joy", b"dull and lifeless"], dtype=np.object_)
    tensor = httpclient.InferInput("text", [2], "BYTES")
    tensor.set_data_from_numpy(texts, binary_data=binary)
    outputs = [
        httpclient.InferRequestedOutput(n, binary_data=binary)
        for n in ("label", "score", "probabilities")
    ]
    result = client.infer("imdb-sentiment", [tensor], outputs=outputs)
    labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label")]
    assert set(labels) <= {"positive", "negative"} and len(labels) == 2
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (2, 2) and np.allclose(probabilities.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(result.as_numpy("score"), probabilities.max(1), atol=1e-6)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_ptb_modes_through_request_parameters(client: Any, binary: bool) -> None:
    texts = np.array([b"the company said", b"stocks fell"], dtype=np.object_)
    tensor = httpclient.InferInput("text", [2], "BYTES")
    tensor.set_data_from_numpy(texts, binary_data=binary)

    def infer(names: list[str], **parameters: Any) -> Any:
        outputs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in names]
        return client.infer("ptb-lstm", [tensor], outputs=outputs, parameters=parameters)

    nxt = infer(["next_words", "next_probabilities"], mode="next", top_k=3)
    assert nxt.as_numpy("next_words").shape == (2, 3)
    assert np.all(np.diff(nxt.as_numpy("next_probabilities"), axis=1) <= 0)
    score = infer(["perplexity", "token_count"], mode="score")
    assert score.as_numpy("token_count").tolist() == [4, 3]  # words + <eos>
    assert np.all(score.as_numpy("perplexity") > 1)
    first = infer(["generated"], mode="generate", seed=5, max_tokens=4).as_numpy("generated")
    again = infer(["generated"], mode="generate", seed=5, max_tokens=4).as_numpy("generated")
    assert first.tolist() == again.tolist() and first.shape == (2,)


def test_a_client_mistake_is_an_exception_naming_it(client: Any) -> None:
    from tritonclient.utils import InferenceServerException

    tensor = httpclient.InferInput("text", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([b""], dtype=np.object_))
    with pytest.raises(InferenceServerException, match=r"text\[0\]: empty text"):
        client.infer("imdb-sentiment", [tensor])
