"""The local deployment end to end: moto S3 server, a function process, the HTTP gateway."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from modelfn.registry import load_registry
from modelfn.store import LocalStore, publish_artifact
from tests.support.manifests import CIFAR10_LABELS, linear_onnx_graph, write_artifact
from tools.local.deployment import LocalDeployment, NothingToServe, local_deployment
from tools.local.gateway import MAX_BODY_BYTES, MAX_EVENT_BYTES

MODEL = "cifar10-cnn"


@pytest.fixture(scope="module")
def published(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[LocalStore, np.ndarray, np.ndarray]:
    root = tmp_path_factory.mktemp("gateway")
    graph, weight, bias = linear_onnx_graph()
    store = LocalStore(root / "store")
    publish_artifact(store, write_artifact(root / "build", onnx=graph))
    store.put_bytes("README.md", b"not an artifact")
    return store, weight, bias


@pytest.fixture(scope="module")
def deployment(
    published: tuple[LocalStore, np.ndarray, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalDeployment]:
    logs = tmp_path_factory.mktemp("function-logs")
    with local_deployment(load_registry(), published[0], models=[MODEL], log_dir=logs) as running:
        yield running


def test_each_function_logs_a_json_line_per_request_to_its_own_file(
    deployment: LocalDeployment,
) -> None:
    log_path = deployment.functions[MODEL].log_path
    assert log_path is not None and log_path.name == f"{MODEL}.log"
    response = httpx.get(f"{deployment.url}/v2/models/{MODEL}/ready", timeout=30)
    assert response.status_code == 200
    lines = [json.loads(row) for row in log_path.read_text().splitlines() if row.startswith("{")]
    requests = [line for line in lines if line.get("message") == "request"]
    assert requests and requests[-1]["route"] == "GET /v2/models/{name}/ready"
    assert requests[-1]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "modelfn"
    assert any(line.get("message") == "model loaded" for line in lines)


def _png(rgb: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_predict_through_gateway_matches_the_graph(
    deployment: LocalDeployment, published: tuple[LocalStore, np.ndarray, np.ndarray]
) -> None:
    _, weight, bias = published
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    response = httpx.post(
        f"{deployment.url}/models/{MODEL}/predict",
        json={"inputs": [_png(img) for img in images], "parameters": {"top_k": 2}},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == MODEL and len(body["outputs"]) == 3
    # Expected labels from the same arithmetic in numpy: x/255, normalise, CHW, x @ W + b.
    mean = np.array((0.49, 0.48, 0.45), np.float32)
    std = np.array((0.25, 0.24, 0.26), np.float32)
    x = ((images.astype(np.float32) / 255 - mean) / std).transpose(0, 3, 1, 2).reshape(3, -1)
    expected = (x @ weight + bias).argmax(axis=1)
    assert [o["label"] for o in body["outputs"]] == [CIFAR10_LABELS[i] for i in expected]
    assert all(len(o["top_k"]) == 2 for o in body["outputs"])


def test_oip_routes_through_gateway(deployment: LocalDeployment) -> None:
    with httpx.Client(base_url=deployment.url, timeout=30) as client:
        assert client.get("/v2/health/live").status_code == 200
        assert client.get("/v2/health/ready").status_code == 200
        assert client.get(f"/v2/models/{MODEL}/ready").status_code == 200
        assert client.get(f"/v2/models/{MODEL}").json()["name"] == MODEL
        request = {
            "inputs": [
                {"name": "input", "shape": [1, 3, 32, 32], "datatype": "FP32", "data": [0.0] * 3072}
            ]
        }
        result = client.post(f"/v2/models/{MODEL}/infer", json=request).json()
        assert result["outputs"][0]["shape"] == [1, 10]


def test_bad_request_is_a_json_4xx_from_the_function(deployment: LocalDeployment) -> None:
    response = httpx.post(
        f"{deployment.url}/models/{MODEL}/predict", json={"inputs": ["not base64!"]}, timeout=30
    )
    assert 400 <= response.status_code < 500
    assert "error" in response.json()


def test_unknown_route_is_the_gateways_404(deployment: LocalDeployment) -> None:
    response = httpx.post(f"{deployment.url}/models/other-model/predict", json={}, timeout=30)
    assert response.status_code == 404 and response.json() == {"message": "Not Found"}


def test_docs_and_the_merged_document_over_http(deployment: LocalDeployment) -> None:
    with httpx.Client(base_url=deployment.url, timeout=30) as client:
        doc = client.get("/openapi.json").json()  # asked of the function's own process
        assert f"/models/{MODEL}/predict" in doc["paths"] and "/v2/health/ready" in doc["paths"]
        assert not any("{name}" in path for path in doc["paths"])
        page = client.get("/docs")
        assert page.status_code == 200 and "SwaggerUIBundle" in page.text
        assert client.get("/docs/swagger-ui-bundle.js").status_code == 200


# Over API Gateway's 10 MB payload quota, and under it but over Lambda's 6 MB event quota: both
# are refused before the function runs.
@pytest.mark.parametrize(
    "size", [MAX_BODY_BYTES + 1, MAX_EVENT_BYTES + 1], ids=["api-gateway", "lambda"]
)
def test_oversized_body_is_refused_before_the_function(
    deployment: LocalDeployment, size: int
) -> None:
    response = httpx.post(
        f"{deployment.url}/models/{MODEL}/predict",
        content=b"x" * size,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413


def test_versioned_oip_route_reaches_the_function(deployment: LocalDeployment) -> None:
    with httpx.Client(base_url=deployment.url, timeout=30) as client:
        version = client.get(f"/v2/models/{MODEL}").json()["versions"][0]
        assert client.get(f"/v2/models/{MODEL}/versions/{version}/ready").status_code == 200
        other = client.get(f"/v2/models/{MODEL}/versions/20000101T000000Z-00000000/ready")
        assert other.status_code == 404 and "error" in other.json()
        assert client.get("/v2/health/ready/").status_code == 404  # as API Gateway: no such route


def test_seeding_copies_the_artifact_objects_only(deployment: LocalDeployment) -> None:
    # weights, graph, manifest, alias; the README beside them stays behind.
    assert deployment.seeded_objects == 4


def test_function_runs_in_its_own_process(deployment: LocalDeployment) -> None:
    import os

    fn = deployment.functions[MODEL]
    assert fn._process is not None and fn._process.pid != os.getpid()
    # The init the gateway reports holds the model load the function logged (EMF ModelLoadTime,
    # ms) and more: an init in the wrong unit, or timed around nothing, fails here.
    (load,) = [
        json.loads(line)
        for line in fn.log_path.read_text(encoding="utf-8").splitlines()
        if '"ModelLoadTime"' in line
    ]
    (load_ms,) = load["ModelLoadTime"]  # EMF values are lists
    assert 0 < load_ms <= fn.init_ms


def test_nothing_published_says_what_to_do(tmp_path: Path) -> None:
    empty = local_deployment(load_registry(), LocalStore(tmp_path / "empty"))
    with pytest.raises(NothingToServe, match="modelfn train"):
        empty.__enter__()
