"""The local gateway's API documentation: one OpenAPI document for every served model, and /docs.

Each model's function describes itself at its /openapi.json (its own task's schemas, its name and
version, real examples it answered; functions/openapi.py). The gateway asks each function for it,
with an event like any request, and merges the documents into the API as the gateway routes it:
`{name}` becomes each model's own name, as in the route list (modelfn/api_routes.py), and the
server routes come from the function that answers them. `/docs` is Swagger UI on that document,
its script and style served from the copy the `fastapi-offline` package ships, so the page loads
nothing from another origin. The deployed HTTP API routes the model routes only, not these two.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from typing import Any

from modelfn.api_routes import Route

DOCS_PATH = "/docs"
OPENAPI_PATH = "/openapi.json"
# Swagger UI's files in fastapi-offline's static folder, by the name /docs/ serves them under.
ASSETS = {
    "swagger-ui-bundle.js": "application/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}
SCHEMAS = "#/components/schemas/"

Reply = tuple[int, dict[str, str], bytes]


def answer(
    method: str,
    path: str,
    documents: Callable[[], Mapping[str, dict[str, Any]]],
    routes: Sequence[tuple[Route, str]],
) -> Reply | None:
    """The reply to a docs request, or None if it is not one (then it is the API's)."""
    is_docs = path in (DOCS_PATH, OPENAPI_PATH) or path.startswith(DOCS_PATH + "/")
    if method != "GET" or not is_docs:
        return None
    if path == OPENAPI_PATH:
        body = json.dumps(merge_documents(documents(), routes)).encode()
        return 200, {"content-type": "application/json"}, body
    if path == DOCS_PATH:
        return 200, {"content-type": "text/html; charset=utf-8"}, swagger_page()
    name = path.removeprefix(DOCS_PATH + "/")
    if name not in ASSETS:
        return 404, {"content-type": "application/json"}, b'{"message": "Not Found"}'
    return 200, {"content-type": ASSETS[name]}, asset(name)


def swagger_page() -> bytes:
    from fastapi.openapi.docs import get_swagger_ui_html

    page = get_swagger_ui_html(
        openapi_url=OPENAPI_PATH,
        title="modelfn: local API",
        swagger_js_url=f"{DOCS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_PATH}/favicon.png",
        # Swagger UI's default validator badge is an image from validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )
    return bytes(page.body)


def asset(name: str) -> bytes:
    try:
        folder = resources.files("fastapi_offline") / "static"
    except ModuleNotFoundError:
        raise RuntimeError(
            "/docs needs Swagger UI's files from the fastapi-offline package: pip install -e '.[local]'"
        ) from None
    return (folder / name).read_bytes()


def merge_documents(
    documents: Mapping[str, dict[str, Any]], routes: Sequence[tuple[Route, str]]
) -> dict[str, Any]:
    """One document for the API: each route described by the function `routes` sends it to.

    A schema two functions describe differently (functions of different releases) is kept once
    per model, as `<name>.<model>`, so each route keeps its own function's exact schema.
    """
    served = set(routes)
    first: dict[str, Any] = next(iter(documents.values()), {})
    merged: dict[str, Any] = {
        "openapi": first.get("openapi", "3.1.0"),
        "info": {
            "title": "modelfn: local API",
            "version": first.get("info", {}).get("version", ""),
            "description": (
                "Every model this gateway serves, as the deployed HTTP API routes it: "
                + ", ".join(f"`{m}`" for m in dict.fromkeys(model for _, model in routes))
                + ". Each route is described by its model's function, with real examples."
            ),
        },
        "paths": {},
        "components": {"schemas": {}},
    }
    schemas = merged["components"]["schemas"]
    for model, document in documents.items():
        renames = {}
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            if schemas.setdefault(name, schema) != schema:
                renames[name] = f"{name}.{model}"
        document = renamed(document, renames)
        for name, new_name in renames.items():
            schemas[new_name] = document["components"]["schemas"][name]
        for path, item in document["paths"].items():
            concrete = path.replace("{name}", model)
            for method, operation in item.items():
                if (Route(method.upper(), concrete), model) not in served:
                    continue
                if "{name}" in path:
                    operation = for_model(operation, model)
                merged["paths"].setdefault(concrete, {})[method] = operation
    return merged


def for_model(operation: dict[str, Any], model: str) -> dict[str, Any]:
    """A model route's operation with the model's name in the path, no longer a parameter."""
    parameters = [
        p
        for p in operation.get("parameters", [])
        if (p.get("in"), p.get("name")) != ("path", "name")
    ]
    suffix = re.sub(r"\W", "_", model)
    return {
        **operation,
        "tags": [model],
        "operationId": f"{operation.get('operationId', 'operation')}__{suffix}",
        "parameters": parameters,
    }


def renamed(node: Any, renames: Mapping[str, str]) -> Any:
    """`node` with each `$ref` to a renamed schema pointing at its new name."""
    if not renames:
        return node
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.removeprefix(SCHEMAS) in renames:
            node = {**node, "$ref": SCHEMAS + renames[ref.removeprefix(SCHEMAS)]}
        return {key: renamed(value, renames) for key, value in node.items()}
    if isinstance(node, list):
        return [renamed(item, renames) for item in node]
    return node
