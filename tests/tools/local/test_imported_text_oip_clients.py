"""NVIDIA's tritonclient against imported Hugging Face text models under the local deployment:
the BERT classifier and the BERT encoder (tests/conftest.py's session imports, built from configs
with a WordPiece tokenizer trained on the IMDB reviews) take texts as a BYTES tensor, in binary
and in JSON mode, and answer what the same deployment's predict route answers for the same texts
(tests/functions/test_imported_huggingface.py and routes/test_embeddings.py hold those equal to
transformers).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelfn.registry import parse_registry
from modelfn.store import LocalStore, publish_artifact
from tests.support.hf_folders import imdb_texts
from tools.local.deployment import LocalDeployment, local_deployment

httpclient = pytest.importorskip(
    "tritonclient.http", reason="tritonclient[http] is a dev dependency"
)

REGISTRY = """
[models.imdb-bert]
task = "text-classification"
imported = true

[models.imdb-embedder]
task = "feature-extraction"
imported = true
"""


@pytest.fixture(scope="module")
def deployment(
    imported_text_classifier: Path,
    imported_embedder: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalDeployment]:
    store = LocalStore(tmp_path_factory.mktemp("imported-text-oip") / "store")
    for folder in (imported_text_classifier, imported_embedder):
        publish_artifact(store, folder)
    with local_deployment(parse_registry(REGISTRY), store, log_dir=None) as running:
        yield running


@pytest.fixture(scope="module")
def client(deployment: LocalDeployment) -> Iterator[Any]:
    url = deployment.url.removeprefix("http://")
    triton = httpclient.InferenceServerClient(
        url=url, network_timeout=60.0, connection_timeout=60.0
    )
    yield triton
    triton.close()


def reviews(count: int) -> list[str]:
    return imdb_texts("test")[:count]


def predicted(deployment: LocalDeployment, model: str, texts: list[str]) -> list[dict[str, Any]]:
    reply = httpx.post(
        f"{deployment.url}/models/{model}/predict", json={"inputs": texts}, timeout=60
    )
    assert reply.status_code == 200, reply.text
    outputs: list[dict[str, Any]] = reply.json()["outputs"]
    return outputs


def text_tensor(texts: list[str], binary: bool) -> Any:
    tensor = httpclient.InferInput("text", [len(texts)], "BYTES")
    tensor.set_data_from_numpy(np.asarray(texts, dtype=np.object_), binary_data=binary)
    return tensor


def test_metadata_says_texts_in(client: Any) -> None:
    meta = client.get_model_metadata("imdb-bert")
    assert [(t["name"], t["datatype"]) for t in meta["inputs"]] == [("text", "BYTES")]
    assert [t["name"] for t in meta["outputs"]] == ["label", "score", "probabilities"]
    meta = client.get_model_metadata("imdb-embedder")
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["outputs"]] == [
        ("embedding", "FP32", [-1, 64])
    ]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_reviews_are_classified_as_the_predict_route_classifies_them(
    client: Any, deployment: LocalDeployment, binary: bool
) -> None:
    texts = reviews(4)
    result = client.infer("imdb-bert", [text_tensor(texts, binary)])
    want = predicted(deployment, "imdb-bert", texts)
    assert [label.decode() for label in result.as_numpy("label")] == [w["label"] for w in want]
    np.testing.assert_allclose(result.as_numpy("score"), [w["score"] for w in want], atol=1e-6)
    assert result.as_numpy("probabilities").shape == (4, 2)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_embeddings_as_the_predict_route_gives_them(
    client: Any, deployment: LocalDeployment, binary: bool
) -> None:
    texts = reviews(3)
    asked = [httpclient.InferRequestedOutput("embedding", binary_data=binary)]
    vectors = client.infer("imdb-embedder", [text_tensor(texts, binary)], outputs=asked).as_numpy(
        "embedding"
    )
    want = [w["embedding"] for w in predicted(deployment, "imdb-embedder", texts)]
    np.testing.assert_allclose(vectors, want, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_number_where_texts_belong_is_an_exception_naming_it(client: Any) -> None:
    from tritonclient.utils import InferenceServerException

    tensor = httpclient.InferInput("text", [1, 4], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 4), np.float32))
    with pytest.raises(InferenceServerException, match="text"):
        client.infer("imdb-bert", [tensor])
