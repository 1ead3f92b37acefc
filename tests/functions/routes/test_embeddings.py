"""A feature-extraction model imported from a Hugging Face folder (a BERT encoder built from a
config, mean pooling, L2-normalised; tests/conftest.py `imported_embedder`), served by the real
Lambda handler: the friendly route, the Open Inference Protocol, and OpenAI's embeddings API,
called with the `openai` client through the local gateway (a real HTTP server routing the shared
route list to the handler as payload 2.0 events).

The reference is transformers: AutoTokenizer and the torch encoder on each text alone, the
attention-masked mean of the last hidden states, normalised.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from numpy.typing import NDArray

from modelfn.api_routes import route_table
from tests.functions.conftest import handler_for
from tests.functions.test_openapi import Checker, check_examples
from tests.support.hf_folders import MAX_LENGTH, imdb_texts
from tests.tools.local.test_api_docs import InProcessFunction
from tools.local.gateway import Gateway

NAME = "imdb-embedder"
EMBEDDINGS = f"/models/{NAME}/v1/embeddings"


@pytest.fixture(scope="module")
def checker(imported_embedder: Path, tmp_path_factory: pytest.TempPathFactory) -> Checker:
    return Checker(handler_for(imported_embedder, tmp_path_factory.mktemp("serve-embedder")))


class ThreadedFunction(InProcessFunction):
    """The handler behind the gateway's HTTP server, called from its request threads one at a
    time (as a Lambda sandbox takes requests), each call in an event loop of its own: Mangum
    runs the app in the calling thread's loop, and the server's threads have none."""

    def __init__(self, handler: Any) -> None:
        super().__init__(handler)
        self.lock = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                return super().invoke(event)
            finally:
                asyncio.set_event_loop(None)
                loop.close()


@pytest.fixture(scope="module")
def gateway(checker: Checker) -> Iterator[Gateway]:
    functions = {NAME: ThreadedFunction(checker.handler)}
    running = Gateway(route_table([NAME]), functions)  # type: ignore[arg-type]
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(gateway: Gateway) -> Any:
    from openai import OpenAI

    # The model's base URL; the gateway checks no key (auth "none"), the client wants one.
    return OpenAI(base_url=f"{gateway.url}/models/{NAME}/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return imdb_texts("test")[:6] + ["a truly wonderful film", "awful"]


def reference(folder: Path, texts: list[str]) -> tuple[NDArray[np.float32], list[int]]:
    """transformers' embeddings of each text alone, and its token count."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder)).eval()
    vectors, counts = [], []
    with torch.no_grad():
        for text in texts:
            encoded = tokenizer(text, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
            mean = model(**encoded).last_hidden_state[0].mean(dim=0).numpy()
            vectors.append(mean / np.linalg.norm(mean))
            counts.append(int(encoded["input_ids"].shape[1]))
    return np.stack(vectors).astype(np.float32), counts


def test_the_openai_client_gets_transformers_embeddings(
    client: Any, texts: list[str], hf_bert_encoder: Path
) -> None:
    want, counts = reference(hf_bert_encoder, texts)
    response = client.embeddings.create(model=NAME, input=texts)  # base64 on the wire
    assert response.object == "list" and response.model == NAME
    assert [d.index for d in response.data] == list(range(len(texts)))
    assert all(d.object == "embedding" for d in response.data)
    got = np.array([d.embedding for d in response.data], dtype=np.float32)
    assert got.shape == (len(texts), 64)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert response.usage.prompt_tokens == response.usage.total_tokens == sum(counts)
    floats = client.embeddings.create(model=NAME, input=texts[0], encoding_format="float")
    assert len(floats.data) == 1
    np.testing.assert_allclose(floats.data[0].embedding, want[0], atol=1e-5)
    assert floats.usage.prompt_tokens == counts[0]


def test_the_openai_client_sees_the_errors(client: Any) -> None:
    import openai

    with pytest.raises(openai.NotFoundError, match="this URL serves 'imdb-embedder'"):
        client.embeddings.create(model="text-embedding-3-small", input="a film")
    with pytest.raises(openai.BadRequestError, match="dimensions: 32, but imdb-embedder makes"):
        client.embeddings.create(model=NAME, input="a film", dimensions=32)
    with pytest.raises(openai.BadRequestError, match=r"input\[0\]: expected a string of text"):
        client.embeddings.create(model=NAME, input=[[101, 2023, 102]])
    with pytest.raises(openai.BadRequestError, match=r"input\[1\]: empty text"):
        client.embeddings.create(model=NAME, input=["a film", ""])


def test_base64_is_each_vectors_float32_bytes(checker: Checker) -> None:
    body = {"model": NAME, "input": ["a film", "a truly wonderful film"]}
    floats = checker("POST", EMBEDDINGS, {**body, "encoding_format": "float"}).json()
    packed = checker("POST", EMBEDDINGS, {**body, "encoding_format": "base64"}).json()
    for a, b in zip(floats["data"], packed["data"], strict=True):
        decoded = np.frombuffer(base64.b64decode(b["embedding"]), dtype="<f4")
        np.testing.assert_array_equal(decoded, np.asarray(a["embedding"], dtype=np.float32))


def test_predict_and_oip_give_the_same_vectors(
    checker: Checker, texts: list[str], hf_bert_encoder: Path
) -> None:
    want, _ = reference(hf_bert_encoder, texts)
    reply = checker("POST", f"/models/{NAME}/predict", {"inputs": texts})
    assert reply.status == 200, reply.body
    got = np.array([o["embedding"] for o in reply.json()["outputs"]])
    np.testing.assert_allclose(got, want, atol=1e-5)
    meta = checker("GET", f"/v2/models/{NAME}").json()
    assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert meta["outputs"] == [{"name": "embedding", "datatype": "FP32", "shape": [-1, 64]}]
    tensor = {"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts}
    reply = checker("POST", f"/v2/models/{NAME}/infer", {"inputs": [tensor]})
    assert reply.status == 200, reply.body
    (output,) = reply.json()["outputs"]
    assert (output["name"], output["shape"]) == ("embedding", [len(texts), 64])
    np.testing.assert_allclose(np.reshape(output["data"], want.shape), want, atol=1e-5)
    reply = checker("POST", f"/models/{NAME}/predict", {"inputs": ["a"], "parameters": {"k": 1}})
    assert reply.status == 400 and "parameters.k" in reply.json()["error"]


def test_the_openapi_document_validates_its_examples(checker: Checker) -> None:
    assert check_examples(checker.doc) >= 6
    assert "/models/{name}/v1/embeddings" in checker.doc["paths"]


def test_errors_come_in_openais_shape_as_the_document_says(checker: Checker) -> None:
    reply = checker("POST", EMBEDDINGS, {"model": NAME})  # no input
    assert reply.status == 400
    assert reply.json() == {
        "error": {
            "message": "input: Field required",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    reply = checker("POST", f"/models/{NAME}/predict", {"inputs": [""]})  # the house shape
    assert reply.json() == {"error": "inputs[0]: empty text; send at least one word"}
