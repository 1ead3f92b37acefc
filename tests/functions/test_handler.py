"""functions.handler as Lambda runs it: module import is the init, then API Gateway events."""

from __future__ import annotations

import base64
import copy
import gc
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from functions.settings import SettingsError
from modelfn.api_routes import MODEL_ROUTES
from modelfn.store import LocalStore
from tests.functions.conftest import (
    MODEL,
    TinyModel,
    aws_example_event,
    encode_image,
    invoke,
    random_pixels,
)
from tools.local.events import http_api_event

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def handler_module(
    published: TinyModel, store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    monkeypatch.setenv("MODELFN_MODEL", MODEL)
    monkeypatch.setenv("MODELFN_STORE_URI", str(store.root))
    monkeypatch.setenv("MODELFN_CACHE_DIR", str(tmp_path / "lambda-tmp"))
    sys.modules.pop("functions.handler", None)
    yield importlib.import_module("functions.handler")
    sys.modules.pop("functions.handler", None)


def example_event(method: str, path: str, body: bytes, *, base64_body: bool) -> dict[str, Any]:
    """The AWS docs' example event, re-aimed at one of our routes."""
    event = copy.deepcopy(aws_example_event())
    event["rawPath"] = path
    event["requestContext"]["http"].update(method=method, path=path)
    event["headers"] = {**event["headers"], "content-type": "application/json"}
    event["body"] = base64.b64encode(body).decode() if base64_body else body.decode()
    event["isBase64Encoded"] = base64_body
    return event


@pytest.mark.parametrize("base64_body", [False, True])
def test_the_aws_example_event_reaches_predict(
    handler_module: ModuleType, published: TinyModel, base64_body: bool
) -> None:
    pixels = random_pixels(2)
    body = json.dumps({"inputs": [encode_image(pixels[0]), pixels[1].tolist()]}).encode()
    event = example_event("POST", f"/models/{MODEL}/predict", body, base64_body=base64_body)
    reply = invoke(handler_module.handler, event)
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    outputs = reply.json()["outputs"]
    want = published.probabilities(pixels)
    assert [o["score"] for o in outputs] == pytest.approx(want.max(axis=1).tolist(), abs=1e-5)


def test_the_aws_example_event_reaches_the_oip_routes(
    handler_module: ModuleType, published: TinyModel
) -> None:
    batch = published.normalise(random_pixels(1))
    request = {
        "id": "req-1",
        "inputs": [
            {
                "name": "input",
                "shape": [1, 3, 32, 32],
                "datatype": "FP32",
                "data": batch.ravel().tolist(),
            }
        ],
    }
    body = json.dumps(request).encode()
    reply = invoke(
        handler_module.handler,
        example_event("POST", f"/v2/models/{MODEL}/infer", body, base64_body=True),
    )
    assert (reply.status, reply.json()["id"]) == (200, "req-1")
    reply = invoke(
        handler_module.handler, example_event("GET", "/v2/health/ready", b"", base64_body=False)
    )
    assert (reply.status, reply.json()) == (200, {"ready": True})


def test_the_versioned_routes_answer_events_routed_by_api_gateway(
    handler_module: ModuleType, published: TinyModel
) -> None:
    # As the API sends them: the shared route's key, its path parameters and the raw path.
    version = published.manifest.version
    batch = published.normalise(random_pixels(1))
    body = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [1, 3, 32, 32],
                    "datatype": "FP32",
                    "data": batch.ravel().tolist(),
                }
            ]
        }
    ).encode()
    replies = {}
    for route in MODEL_ROUTES:
        if "{version}" not in route.path:
            continue
        model_route = route.for_model(MODEL)
        path = model_route.path.replace("{version}", version)
        params = model_route.match(route.method, path)
        assert params == {"version": version}
        event = http_api_event(
            route.method,
            path,
            headers={"content-type": "application/json"} if route.method == "POST" else {},
            body=body if route.method == "POST" else b"",
            route_key=model_route.key,
            path_parameters=params,
        )
        assert event["rawPath"] == path and event["pathParameters"] == {"version": version}
        replies[route.key] = invoke(handler_module.handler, event)
    infer = replies["POST /v2/models/{name}/versions/{version}/infer"]
    assert infer.status == 200
    assert infer.json()["model_version"] == version
    (logits,) = infer.json()["outputs"]
    assert logits["data"] == pytest.approx(published.logits(batch).ravel().tolist(), abs=1e-4)
    metadata = replies["GET /v2/models/{name}/versions/{version}"]
    assert (metadata.status, metadata.json()["versions"]) == (200, [version])
    ready = replies["GET /v2/models/{name}/versions/{version}/ready"]
    assert (ready.status, ready.json()) == (200, {"name": MODEL, "ready": True})


def test_an_unset_variable_fails_the_init_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELFN_MODEL", raising=False)
    monkeypatch.setenv("MODELFN_STORE_URI", "/nowhere")
    sys.modules.pop("functions.handler", None)
    with pytest.raises(SettingsError, match="MODELFN_MODEL is not set"):
        importlib.import_module("functions.handler")
    sys.modules.pop("functions.handler", None)
    assert gc.isenabled()  # the init paused the garbage collector, and a failed one restores it


def test_the_handler_imports_neither_torch_nor_onnx(
    published: TinyModel, store: LocalStore, tmp_path: Path
) -> None:
    # A fresh interpreter, as a cold start: torch and onnx are not in the Lambda zip, Pillow
    # and boto3 are imported only when a request (or an S3 store) needs them, and the
    # playground's page and card only when MODELFN_PLAYGROUND turns them on.
    modules = ("torch", "onnx", "PIL", "boto3", "functions.playground")
    probe = (
        "import json, sys; from functions.handler import app; "
        f"print(json.dumps({{m: m in sys.modules for m in {modules!r}}}))"
    )
    env = {
        **os.environ,
        "MODELFN_MODEL": MODEL,
        "MODELFN_STORE_URI": str(store.root),
        "MODELFN_CACHE_DIR": str(tmp_path / "cold"),
    }
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    imported = json.loads(done.stdout.strip().splitlines()[-1])
    assert imported == dict.fromkeys(modules, False)
    assert '"message":"model loaded"' in done.stdout + done.stderr


def test_the_init_leaves_the_garbage_collector_on_and_its_objects_out_of_its_sight(
    published: TinyModel, store: LocalStore, tmp_path: Path
) -> None:
    # The init runs with the collector paused and freezes what it allocated (functions/__init__):
    # the collector must be on again, and still collect a cycle made after the init.
    probe = (
        "import gc, json; from functions.handler import app\n"
        "frozen = gc.get_freeze_count()\n"
        "cycle = []; cycle.append(cycle); del cycle\n"
        "print(json.dumps({'enabled': gc.isenabled(), 'frozen': frozen, "
        "'collected': gc.collect()}))"
    )
    env = {
        **os.environ,
        "MODELFN_MODEL": MODEL,
        "MODELFN_STORE_URI": str(store.root),
        "MODELFN_CACHE_DIR": str(tmp_path / "cold"),
    }
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["enabled"]
    assert found["frozen"] > 10_000  # FastAPI, pydantic, numpy, onnxruntime, the app and model
    assert found["collected"] >= 1
