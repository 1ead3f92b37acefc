"""The gateway's /docs and merged /openapi.json for two models' real functions.

The functions are the real Lambda handlers, called in this process through `Gateway.dispatch`
(test_gateway.py runs the same pages over HTTP with worker processes): the tiny linear image model
and the IMDB classifier trained on the real data.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate as validate_spec

from modelfn.api_routes import route_table
from tests.functions.conftest import build_tiny_model, handler_for, invoke
from tools.local.api_docs import ASSETS, merge_documents
from tools.local.gateway import Gateway

MODELS = ["cifar10-cnn", "imdb-sentiment"]


class InProcessFunction:
    """Stands in for a LocalFunction: the same handler, without the process around it."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        reply = invoke(self.handler, event)
        return {"statusCode": reply.status, "headers": reply.headers, "body": reply.body.decode()}


@pytest.fixture(scope="module")
def gateway(imdb_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("api-docs")
    tiny = build_tiny_model(root / "build")
    functions = {
        "cifar10-cnn": InProcessFunction(handler_for(tiny.folder, root / "cifar")),
        "imdb-sentiment": InProcessFunction(handler_for(imdb_artifact, root / "imdb")),
    }
    running = Gateway(route_table(MODELS), functions)  # type: ignore[arg-type]
    running.start()  # so that stop() has a server loop to end
    yield running
    running.stop()


def get(gateway: Gateway, path: str) -> tuple[int, dict[str, str], bytes]:
    return gateway.dispatch("GET", path, {}, b"")


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def test_merged_document_describes_every_route_the_gateway_has(gateway: Gateway) -> None:
    status, headers, body = get(gateway, "/openapi.json")
    assert status == 200 and headers["content-type"] == "application/json"
    doc = json.loads(body)
    validate_spec(doc)
    documented = {(m.upper(), path) for path, item in doc["paths"].items() for m in item}
    assert documented == {(route.method, route.path) for route, _ in gateway.routes}
    # Each model's routes carry that function's own schemas and examples.
    cifar = doc["paths"]["/models/cifar10-cnn/predict"]["post"]
    imdb = doc["paths"]["/models/imdb-sentiment/predict"]["post"]
    assert cifar["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "PredictRequest-image-classification"
    )
    imdb_examples = imdb["requestBody"]["content"]["application/json"]["examples"]
    assert all("imdb test text" in e["summary"] for e in imdb_examples.values())
    assert cifar["tags"] == ["cifar10-cnn"] and imdb["tags"] == ["imdb-sentiment"]
    # The model is in the path, no longer a parameter; the version still is one.
    version_infer = doc["paths"]["/v2/models/imdb-sentiment/versions/{version}/infer"]["post"]
    assert [p["name"] for p in version_infer["parameters"] if p["in"] == "path"] == ["version"]
    operation_ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))
    assert all(
        ref.removeprefix("#/components/schemas/") in doc["components"]["schemas"]
        for ref in refs(doc)
    )


def test_docs_page_and_its_assets_come_from_the_gateway_itself(gateway: Gateway) -> None:
    status, headers, page = get(gateway, "/docs")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"/openapi.json" in page and b"SwaggerUIBundle" in page
    assert b"http://" not in page and b"https://" not in page  # no third-party origin
    for name, content_type in ASSETS.items():
        status, headers, asset = get(gateway, f"/docs/{name}")
        assert status == 200 and headers["content-type"] == content_type and len(asset) > 1000
    assert get(gateway, "/docs/secret.txt")[0] == 404
    # The API's own 404 is unchanged for paths that are neither docs nor routes.
    assert get(gateway, "/documentation")[2] == b'{"message": "Not Found"}'


def test_a_schema_two_functions_describe_differently_is_kept_per_model() -> None:
    def document(description: str) -> dict[str, Any]:
        schema = {"type": "object", "description": description}
        operation = {
            "operationId": "predict",
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "requestBody": {
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Body"}}}
            },
            "responses": {"200": {"description": "ok"}},
        }
        return {
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1"},
            "paths": {"/models/{name}/predict": {"post": operation}},
            "components": {"schemas": {"Body": schema}},
        }

    merged = merge_documents({"a": document("old"), "b": document("new")}, route_table(["a", "b"]))
    schemas = merged["components"]["schemas"]
    assert schemas["Body"]["description"] == "old" and schemas["Body.b"]["description"] == "new"
    body = merged["paths"]["/models/b/predict"]["post"]["requestBody"]["content"][
        "application/json"
    ]
    assert body["schema"] == {"$ref": "#/components/schemas/Body.b"}
    assert json.dumps(merged["paths"]["/models/a/predict"]).count("Body.b") == 0
