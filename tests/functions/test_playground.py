"""The playground's routes (functions/routes/playground.py): off by default, strict CSP, the card.

The card and plot tests serve the `tiny` CIFAR-10 artifact trained on the real data
(tests/conftest.py), which ships examples.json and training's report plots like any version.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mangum import Mangum

from functions.app import create_app
from functions.settings import FunctionSettings
from modelfn.api_routes import MODEL_ROUTES, PLAYGROUND_ROUTES, route_table
from modelfn.artifact import EXAMPLES_FILE, parse_examples, read_manifest
from tests.functions.conftest import MODEL, TinyModel, call, handler_for

FOLDER = f"/models/{MODEL}/"  # the page and its relative URLs
PAGE = f"{FOLDER}page"


@pytest.fixture
def playground(published: TinyModel, settings: FunctionSettings) -> Mangum:
    """The tiny model's function with the playground on."""
    on = settings.model_copy(update={"playground": True})
    return Mangum(create_app(on), lifespan="off")


@pytest.fixture(scope="module")
def cifar(cifar_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Mangum, Path]:
    """The function serving a trained CIFAR-10 version with the playground on, and its cache."""
    root = tmp_path_factory.mktemp("playground")
    return handler_for(cifar_artifact, root, playground=True), root / "cache"


# --- the setting ------------------------------------------------------------------------------


def test_playground_is_off_unless_the_setting_turns_it_on() -> None:
    env = {"MODELFN_MODEL": MODEL, "MODELFN_STORE_URI": "/tmp/store"}
    assert FunctionSettings.resolve(env).playground is False
    assert FunctionSettings.resolve({**env, "MODELFN_PLAYGROUND": "1"}).playground is True
    assert FunctionSettings.resolve({**env, "MODELFN_PLAYGROUND": "0"}).playground is False


@pytest.mark.parametrize("path", [PAGE, f"{FOLDER}card.json", f"{FOLDER}static/playground.js"])
def test_page_routes_answer_404_when_off(handler: Mangum, path: str) -> None:
    reply = call(handler, "GET", path)
    assert reply.status == 404
    assert "not a route of this function" in reply.json()["error"]


def test_page_routes_are_a_list_of_their_own() -> None:
    assert not set(PLAYGROUND_ROUTES) & set(MODEL_ROUTES)
    assert all(route.method == "GET" for route in PLAYGROUND_ROUTES)  # read-only
    off, on = route_table(["m"]), route_table(["m"], playground=True)
    assert [route for route, _ in on if route not in {r for r, _ in off}] == [
        route.for_model("m") for route in PLAYGROUND_ROUTES
    ]


# --- the page and its assets ------------------------------------------------------------------


def test_page_is_served_with_a_strict_content_security_policy(playground: Mangum) -> None:
    reply = call(playground, "GET", PAGE)
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/html")
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in reply.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["img-src"] == "'self' data: blob:"
    assert "unsafe" not in reply.headers["content-security-policy"]
    assert "http" not in reply.headers["content-security-policy"]  # no other origin
    assert reply.headers["x-content-type-options"] == "nosniff"
    page = reply.body.decode()
    # No inline script or style, nothing from another origin: the CSP would refuse them.
    assert (
        "<style" not in page
        and " style=" not in page
        and " on" not in re.sub(r"<!--.*?-->", "", page)
    )
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.DOTALL)
    assert scripts and len(scripts) == page.count("<script")
    assert all("src=" in attributes and not body.strip() for attributes, body in scripts)
    for url in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert not re.match(r"^(https?:)?//", url), url


def test_page_loads_before_the_model_does(store: object, settings: FunctionSettings) -> None:
    """Nothing is published: the page still loads, and its card says why there is no model."""
    handler = Mangum(create_app(settings.model_copy(update={"playground": True})), lifespan="off")
    assert call(handler, "GET", PAGE).status == 200
    card = call(handler, "GET", f"{FOLDER}card.json")
    assert card.status == 503 and "not loaded" in card.json()["error"]


def test_page_of_another_model_is_404(playground: Mangum) -> None:
    reply = call(playground, "GET", "/models/imdb-sentiment/page")
    assert reply.status == 404
    assert "is not served here" in reply.json()["error"]


@pytest.mark.parametrize(
    ("asset", "media_type"),
    [("playground.js", "text/javascript"), ("playground.css", "text/css")],
)
def test_assets_are_served(playground: Mangum, asset: str, media_type: str) -> None:
    reply = call(playground, "GET", f"{FOLDER}static/{asset}")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith(media_type)
    assert reply.headers["content-security-policy"]
    assert reply.body == (Path("functions/playground/static") / asset).read_bytes()


@pytest.mark.parametrize(
    "asset",
    [
        "nope.js",
        "__init__.py",  # a file of the package, not an asset
        "model.html",  # the page is served at the model's path only
        "..%2F__init__.py",
        "..%2F..%2Fsettings.py",
        "%2E%2E%2Fcard.py",
        "%2Fetc%2Fpasswd",
        "..",
    ],
)
def test_unknown_asset_is_404_and_no_path_leaves_the_static_folder(
    playground: Mangum, asset: str
) -> None:
    reply = call(playground, "GET", f"{FOLDER}static/{asset}")
    assert reply.status == 404
    assert b"import" not in reply.body and b"root:" not in reply.body
    assert "error" in reply.json()


# --- the card and the plots -------------------------------------------------------------------


def test_card_describes_the_served_version(
    cifar: tuple[Mangum, Path], cifar_artifact: Path
) -> None:
    handler, _ = cifar
    manifest = read_manifest(cifar_artifact)
    reply = call(handler, "GET", f"/models/{manifest.name}/card.json")
    assert reply.status == 200
    assert reply.headers["content-security-policy"]
    card = reply.json()
    assert (card["name"], card["version"], card["alias"], card["task"]) == (
        manifest.name, manifest.version, "latest", manifest.task,
    )  # fmt: skip
    assert card["headline"] == {"name": "accuracy", "value": manifest.metrics["accuracy"]}
    assert card["frameworks"] == manifest.frameworks
    assert card["data"] == manifest.data.model_dump(mode="json")
    assert card["training"]["preset"] == "tiny"
    # The `<figure>.<label>` metrics are per class; the rest are the overall figures.
    assert [c["label"] for c in card["per_class"]] == manifest.labels
    assert card["per_class"][0]["figures"]["f1"] == manifest.metrics[f"f1.{manifest.labels[0]}"]
    assert "accuracy" in card["metrics"] and not any("." in key for key in card["metrics"])
    plots = sorted(name for name in manifest.files if name.endswith(".png"))
    assert plots and sorted(p["file"] for p in card["plots"]) == plots
    assert all(p["url"] == f"files/{p['file']}" for p in card["plots"])
    shipped = parse_examples((cifar_artifact / EXAMPLES_FILE).read_bytes())
    assert [e["input"] for e in card["examples"]] == [e.input for e in shipped.examples]
    assert [e["label"] for e in card["examples"]] == [e.label for e in shipped.examples]
    assert card["limits"] == {"top_k": len(manifest.labels), "max_tokens": None}


def test_plots_are_served_and_sha256_checked(cifar_artifact: Path, tmp_path: Path) -> None:
    # Its own function and cache: the damage below must not reach the module's shared `cifar`.
    handler, cache = handler_for(cifar_artifact, tmp_path, playground=True), tmp_path / "cache"
    manifest = read_manifest(cifar_artifact)
    page = f"/models/{manifest.name}/"
    plot = next(name for name in manifest.files if name.endswith(".png"))
    reply = call(handler, "GET", f"{page}files/{plot}")
    assert reply.status == 200 and reply.headers["content-type"] == "image/png"
    assert reply.body == (cifar_artifact / plot).read_bytes()
    for other in ("model.onnx", "model.safetensors", EXAMPLES_FILE, "manifest.json", "nope.png"):
        assert call(handler, "GET", f"{page}files/{other}").status == 404, other
    # A cached copy changed after the fetch is refused as it is read, never served.
    cached = cache / manifest.name / manifest.version / plot
    cached.write_bytes(cached.read_bytes()[:-1] + b"\0")
    refused = call(handler, "GET", f"{page}files/{plot}")
    assert refused.status == 500 and refused.body != cached.read_bytes()
