"""Fixtures for the functions: a tiny but real artifact (no torch), stores, and Lambda calls.

The model is a real ONNX graph built with onnx.helper, input "input" FP32 [N,3,32,32] -> Flatten
-> MatMul -> Add -> "logits" [N,10], so every answer can be checked against numpy.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mangum import Mangum
from numpy.typing import NDArray
from PIL import Image
from safetensors.numpy import save as save_safetensors

from functions.app import create_app
from functions.settings import FunctionSettings
from modelfn.artifact import Manifest, read_manifest
from modelfn.store import LocalStore, publish_artifact
from tests.support.aws import fake_aws_env
from tests.support.manifests import linear_graph, write_artifact
from tools.local.events import http_api_event, response_parts
from tools.local.lambda_context import LocalLambdaContext

MODEL = "cifar10-cnn"
EVENTS = Path(__file__).parent / "events"


@dataclass
class TinyModel:
    """A built artifact and the numpy twin of its graph."""

    folder: Path
    manifest: Manifest
    weight: NDArray[np.float32]  # [3072, 10]
    bias: NDArray[np.float32]  # [10]

    def normalise(self, pixels: NDArray[Any]) -> NDArray[np.float32]:
        """[N, 32, 32, 3] pixels -> the graph input, written out independently of the functions."""
        spec = self.manifest.preprocessing
        x = np.asarray(pixels, dtype=np.float32) / 255.0
        x = (x - np.array(spec.mean, np.float32)) / np.array(spec.std, np.float32)
        return x.transpose(0, 3, 1, 2).astype(np.float32)

    def logits(self, batch: NDArray[np.float32]) -> NDArray[np.float64]:
        flat = batch.reshape(len(batch), -1).astype(np.float64)
        return flat @ self.weight.astype(np.float64) + self.bias

    def probabilities(self, pixels: NDArray[Any]) -> NDArray[np.float64]:
        z = self.logits(self.normalise(pixels))
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return np.asarray(e / e.sum(axis=1, keepdims=True))


def build_tiny_model(
    root: Path, seed: int = 0, name: str = MODEL, *, external_data: bool = False
) -> TinyModel:
    rng = np.random.default_rng(seed)
    weight = rng.normal(0.0, 0.02, (3 * 32 * 32, 10)).astype(np.float32)
    bias = rng.normal(0.0, 0.1, (10,)).astype(np.float32)
    folder = write_artifact(
        root,
        name=name,
        weights=save_safetensors({"weight": weight, "bias": bias}),
        onnx=linear_graph(weight, bias),
        external_data=external_data,
    )
    return TinyModel(folder, read_manifest(folder), weight, bias)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture
def tiny(tmp_path: Path) -> TinyModel:
    return build_tiny_model(tmp_path / "build")


@pytest.fixture
def published(store: LocalStore, tiny: TinyModel) -> TinyModel:
    publish_artifact(store, tiny.folder)
    return tiny


@pytest.fixture
def settings(store: LocalStore, tmp_path: Path) -> FunctionSettings:
    return FunctionSettings(
        model=MODEL, store_uri=str(store.root), cache_dir=tmp_path / "cache", load_retry_s=60
    )


@pytest.fixture
def handler(published: TinyModel, settings: FunctionSettings) -> Mangum:
    """The Lambda handler of a function whose model is published and loaded."""
    return Mangum(create_app(settings), lifespan="off")


# --- Lambda calls -----------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def lambda_context() -> LocalLambdaContext:
    return LocalLambdaContext(function_name=MODEL, memory_limit_in_mb=1024, timeout_s=15)


def invoke(handler: Callable[..., Any], event: dict[str, Any]) -> Reply:
    result = handler(event, lambda_context())
    return Reply(*response_parts(result))


def call(
    handler: Callable[..., Any],
    method: str,
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """Send one HTTP API (payload 2.0) event, as API Gateway would, and decode the response."""
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    sent = {"content-type": "application/json", **(headers or {})} if data else headers
    return invoke(handler, http_api_event(method, path, headers=sent, body=data))


def aws_example_event() -> dict[str, Any]:
    """The payload 2.0 example event from the API Gateway developer guide (see events/)."""
    event: dict[str, Any] = json.loads((EVENTS / "apigw-http-api-v2-example.json").read_text())
    return event


# --- inputs -----------------------------------------------------------------------------------


def random_pixels(n: int, seed: int = 1, size: int = 32) -> NDArray[np.uint8]:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def encode_image(pixels: NDArray[Any], fmt: str = "PNG", mode: str | None = None) -> str:
    image = Image.fromarray(np.asarray(pixels, dtype=np.uint8))
    if mode:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and region, so nothing can reach a real AWS account."""
    # AWS_MAX_ATTEMPTS=1: an unreachable endpoint fails at once instead of retrying.
    fake_aws_env(monkeypatch, AWS_MAX_ATTEMPTS="1")
    yield


def handler_for(folder: Path, root: Path, **settings: Any) -> Mangum:
    """The Lambda handler of a function serving the artifact in `folder`, published under `root`."""
    store = LocalStore(root / "store")
    manifest = publish_artifact(store, folder)
    return Mangum(
        create_app(
            FunctionSettings(
                model=manifest.name, store_uri=str(store.root), cache_dir=root / "cache", **settings
            )
        ),
        lifespan="off",
    )
