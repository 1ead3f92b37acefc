"""OIP metadata and health routes, unknown routes, and the catch-all 500."""

from __future__ import annotations

from typing import Any

import numpy as np
from mangum import Mangum

import modelfn
from functions.app import create_app
from functions.errors import served_routes
from functions.model_loader import load_model
from functions.settings import FunctionSettings
from tests.functions.conftest import MODEL, TinyModel, call


def test_model_metadata_follows_the_manifest(handler: Mangum, published: TinyModel) -> None:
    version = published.manifest.version
    expected = {
        "name": MODEL,
        "versions": [version],
        "platform": "onnxruntime",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 3, 32, 32]}],
        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}],
    }
    assert call(handler, "GET", f"/v2/models/{MODEL}").json() == expected
    reply = call(handler, "GET", f"/v2/models/{MODEL}/versions/{version}")
    assert (reply.status, reply.json()) == (200, expected)
    assert (
        call(handler, "GET", f"/v2/models/{MODEL}/versions/20200101T000000Z-00000000").status == 404
    )


def test_readiness_and_liveness(handler: Mangum, published: TinyModel) -> None:
    version = published.manifest.version
    assert call(handler, "GET", f"/v2/models/{MODEL}/ready").json() == {
        "name": MODEL,
        "ready": True,
    }
    reply = call(handler, "GET", f"/v2/models/{MODEL}/versions/{version}/ready")
    assert (reply.status, reply.json()) == (200, {"name": MODEL, "ready": True})
    assert call(handler, "GET", "/v2/health/ready").json() == {"ready": True}
    assert call(handler, "GET", "/v2/health/live").json() == {"live": True}
    assert call(handler, "GET", "/v2/models/other/ready").status == 404


def test_server_metadata(handler: Mangum) -> None:
    reply = call(handler, "GET", "/v2")
    assert reply.json() == {
        "name": "modelfn",
        "version": modelfn.__version__,
        "extensions": ["binary_tensor_data"],
    }


def test_unknown_routes_and_methods_answer_json_errors(handler: Mangum) -> None:
    reply = call(handler, "GET", "/v3/models")
    assert reply.status == 404
    error = reply.json()["error"]
    assert error.startswith("GET /v3/models is not a route of this function; its routes: ")
    assert f"POST /models/{MODEL}/predict, POST /v2/models/{MODEL}/infer, " in error
    assert "/docs" not in error  # API Gateway does not route /docs to the function


def test_every_route_a_404_names_is_served(handler: Mangum, published: TinyModel) -> None:
    listed = served_routes(MODEL)
    assert "GET /v2/health/ready" in listed
    for key in listed:
        method, path = key.split(" ")
        path = path.replace("{version}", published.manifest.version)
        reply = call(handler, method, path, {} if method == "POST" else None)
        assert reply.status in (200, 400), (key, reply.status, reply.body)
    reply = call(handler, "DELETE", f"/v2/models/{MODEL}")
    assert reply.status == 405
    assert reply.json() == {"error": f"DELETE is not allowed on /v2/models/{MODEL}"}


class BrokenSession:
    """An onnxruntime session that fails the way a bug would, not the way a bad input does."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        raise RuntimeError("secret internal detail at /opt/python/onnxruntime/capi.py:123")


def test_an_unexpected_error_is_a_500_without_the_trace(
    published: TinyModel, settings: FunctionSettings
) -> None:
    model = load_model(settings)
    broken = type(model)(model.manifest, BrokenSession(model.session), model.folder, model.task)
    handler = Mangum(create_app(settings, broken), lifespan="off")
    reply = call(handler, "POST", f"/models/{MODEL}/predict", {"inputs": [[[[0, 0, 0]]]]})
    assert reply.status == 500
    error = reply.json()["error"]
    assert error.startswith("internal error (request id ")
    assert "secret" not in reply.body.decode() and "Traceback" not in reply.body.decode()
