"""The function's /openapi.json: what FastAPI derives from the routes, made exact for its model.

FastAPI builds the document from the routes' pydantic models and `responses=`. What it cannot
know is set here:

- errors: a request FastAPI would answer with 422 gets a 400 `{"error": ...}` here
  (functions/errors.py), so its 422 responses and their schemas go;
- the served model, once loaded: the friendly route's `parameters` and `outputs` become its
  task's (`PredictRequest-<task>`, not the union of every task's), the path parameters show its
  name and version, and the routes show real examples this version answered
  (functions/examples.py).

The document is built once per loaded version (an alias move builds the next one); before the
model loads, it is the generic one, and the next request after the load gets the exact one.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from functions.examples import TASK_DOCS, RouteExample, version_examples
from functions.model_loader import LoadedModel, ModelSlot
from functions.routes.models import ModelReadyResponse, model_metadata_of
from modelfn.artifact import EXAMPLES_FILE

PREDICT = "/models/{name}/predict"
INFER = ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer")
METADATA = ("/v2/models/{name}", "/v2/models/{name}/versions/{version}")
READY = ("/v2/models/{name}/ready", "/v2/models/{name}/versions/{version}/ready")
SCHEMAS = "#/components/schemas/"


def install_openapi(app: FastAPI) -> None:
    """Serve `openapi_document` for the slot's loaded version at the app's /openapi.json."""
    built: dict[str, dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        slot: ModelSlot = app.state.slot
        model = slot.model
        key = model.manifest.version if model is not None else ""
        if key not in built:
            built.clear()  # one version at a time
            built[key] = openapi_document(app, model)
        return built[key]

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented hook


def openapi_document(app: FastAPI, model: LoadedModel | None) -> dict[str, Any]:
    """The app's document; with `model`, exact for it (its task, name, version, examples)."""
    # A deep copy: FastAPI puts the routes' `openapi_extra` dicts into the document by reference.
    doc = copy.deepcopy(
        get_openapi(
            title=app.title,
            version=app.version,
            openapi_version=app.openapi_version,
            description=app.description,
            routes=app.routes,
        )
    )
    for operation in operations(doc):
        operation["responses"].pop("422", None)
    for unused in ("HTTPValidationError", "ValidationError"):
        doc["components"]["schemas"].pop(unused, None)
    if model is not None:
        specialise(doc, model)
    return doc


def operations(doc: dict[str, Any], path: str | None = None) -> list[dict[str, Any]]:
    """Every operation of the document, or of one path."""
    items = [doc["paths"][path]] if path is not None else list(doc["paths"].values())
    return [operation for item in items for operation in item.values()]


def specialise(doc: dict[str, Any], model: LoadedModel) -> None:
    manifest = model.manifest
    for operation in operations(doc):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path" and parameter["name"] in ("name", "version"):
                parameter["example"] = (
                    manifest.name if parameter["name"] == "name" else manifest.version
                )
    docs = TASK_DOCS.get(manifest.task)
    examples = version_examples(model)
    if docs is None or examples is None:
        return
    schemas = doc["components"]["schemas"]
    request, response = f"PredictRequest-{manifest.task}", f"PredictResponse-{manifest.task}"
    schemas[request] = copy.deepcopy(schemas.pop("PredictRequest"))
    parameters = schemas[request]["properties"]["parameters"]
    schemas[request]["properties"]["parameters"] = {
        **add_schema(schemas, docs.parameters),
        "description": parameters["description"],
    }
    if docs.item_schema is not None:
        inputs = schemas[request]["properties"]["inputs"]
        inputs["items"] = docs.item_schema(model)
    schemas[response] = copy.deepcopy(schemas.pop("PredictResponse"))
    if docs.output_schema is not None:
        items = docs.output_schema(model)
    else:
        outputs = [add_schema(schemas, output) for output in docs.outputs]
        items = outputs[0] if len(outputs) == 1 else {"anyOf": outputs}
    schemas[response]["properties"]["outputs"]["items"] = items
    (predict,) = operations(doc, PREDICT)
    body_schema(predict)["schema"] = {"$ref": SCHEMAS + request}
    success(predict)["schema"] = {"$ref": SCHEMAS + response}
    show_examples(predict, examples.predict, examples.predict_error)
    for path in INFER:
        for operation in operations(doc, path):
            show_examples(operation, examples.infer, examples.infer_error)
    for paths, answer in (
        (METADATA, model_metadata_of(model).model_dump(mode="json")),
        (READY, ModelReadyResponse(name=manifest.name, ready=True).model_dump(mode="json")),
    ):
        for path in paths:
            for operation in operations(doc, path):
                success(operation)["example"] = answer
    source = (
        f"held-out data from the version's {EXAMPLES_FILE}"
        if examples.source == EXAMPLES_FILE
        else f"made up: this version ships no {EXAMPLES_FILE}"
    )
    doc["info"]["description"] += (
        f"\n\nThis function serves `{manifest.name}` version `{manifest.version}` "
        f"({manifest.task}). Its examples are {source}; every answer shown is this version's."
    )


def add_schema(schemas: dict[str, Any], model: type[Any]) -> dict[str, str]:
    """A $ref to `model`'s schema, added to the components (with the models it refers to)."""
    schema = model.model_json_schema(ref_template=SCHEMAS + "{model}")
    for name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas.setdefault(model.__name__, schema)
    return {"$ref": SCHEMAS + model.__name__}


def body_schema(operation: dict[str, Any]) -> dict[str, Any]:
    media: dict[str, Any] = operation["requestBody"]["content"]["application/json"]
    return media


def success(operation: dict[str, Any], status: str = "200") -> dict[str, Any]:
    media: dict[str, Any] = operation["responses"][status]["content"]["application/json"]
    return media


def show_examples(
    operation: dict[str, Any], shown: list[RouteExample], error: RouteExample
) -> None:
    """Named examples of the request body, the answer each gets, and a 400's answer."""
    if shown:
        body_schema(operation)["examples"] = {
            e.key: {"summary": e.summary, "value": e.request} for e in shown
        }
        success(operation)["examples"] = {
            e.key: {"summary": e.summary, "value": e.response} for e in shown
        }
    success(operation, "400")["examples"] = {
        error.key: {"summary": f"the answer to {error.summary}", "value": error.response}
    }
