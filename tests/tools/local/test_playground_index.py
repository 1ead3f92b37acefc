"""The gateway's playground index `/` (tools/local/playground.py), through `Gateway.dispatch`.

Two real function handlers in this process (as test_api_docs.py runs them): the tiny linear
image model, loaded, and an IMDB function whose model is not published, so the index shows why.
tests/playground/test_browser.py opens the same page in a browser over worker processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mangum import Mangum

from functions.app import create_app
from functions.settings import FunctionSettings
from modelfn.api_routes import route_table
from tests.functions.conftest import build_tiny_model, handler_for
from tests.tools.local.test_api_docs import InProcessFunction
from tools.local.auth import (
    Authorizer,
    IamAuthorizer,
    JwtAuthorizer,
    LocalCredentials,
    LocalJwtIssuer,
)
from tools.local.gateway import Gateway
from tools.local.playground import index_page

MODELS = ["cifar10-cnn", "imdb-sentiment"]


def gateway_of(root: Path, *, playground: bool, authorizer: Authorizer | None = None) -> Gateway:
    tiny = build_tiny_model(root / "build")
    unpublished = FunctionSettings(
        model="imdb-sentiment", store_uri=str(root / "empty"), cache_dir=root / "cache-imdb",
        playground=playground,
    )  # fmt: skip
    functions = {
        "cifar10-cnn": InProcessFunction(
            handler_for(tiny.folder, root / "cifar", playground=playground)
        ),
        "imdb-sentiment": InProcessFunction(Mangum(create_app(unpublished), lifespan="off")),
    }
    running = Gateway(
        route_table(MODELS, playground=playground),
        functions,  # type: ignore[arg-type]
        authorizer=authorizer,
    )
    running.start()  # so that stop() has a server loop to end
    return running


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    running = gateway_of(tmp_path, playground=True)
    yield running
    running.stop()


def test_index_lists_each_model_and_links_its_page(gateway: Gateway) -> None:
    status, headers, body = gateway.dispatch("GET", "/", {}, b"")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    page = body.decode()
    assert '<a href="models/cifar10-cnn/page">cifar10-cnn</a>' in page
    assert "image-classification" in page and "accuracy 0.500" in page  # the manifest's metric
    # The unpublished model is listed, with the reason its function gives.
    assert '<a href="models/imdb-sentiment/page">imdb-sentiment</a>' in page
    assert "not available: model &#x27;imdb-sentiment&#x27; is not loaded" in page


def test_index_stylesheet_is_the_pages_own(gateway: Gateway) -> None:
    status, headers, body = gateway.dispatch("GET", "/playground.css", {}, b"")
    assert status == 200 and headers["content-type"].startswith("text/css")
    assert body == Path("functions/playground/static/playground.css").read_bytes()


def test_model_page_is_routed_to_its_function(gateway: Gateway) -> None:
    status, headers, body = gateway.dispatch("GET", "/models/cifar10-cnn/page", {}, b"")
    assert status == 200 and b'src="static/playground.js"' in body
    assert headers["content-security-policy"].startswith("default-src 'self'")


def test_the_model_folder_url_redirects_to_its_page(gateway: Gateway) -> None:
    # API Gateway routes cannot end in "/", so the page is `page`; the typed URL still works.
    status, headers, _ = gateway.dispatch("GET", "/models/cifar10-cnn/", {}, b"")
    assert (status, headers["location"]) == (308, "page")


def test_without_the_playground_there_is_no_index_and_no_page(tmp_path: Path) -> None:
    gateway = gateway_of(tmp_path, playground=False)
    try:
        for path in (
            "/",
            "/playground.css",
            "/models/cifar10-cnn/",
            "/models/cifar10-cnn/page",
            "/models/cifar10-cnn/card.json",
        ):
            assert gateway.dispatch("GET", path, {}, b"")[0] == 404, path
    finally:
        gateway.stop()


def test_index_escapes_what_the_cards_say() -> None:
    card = {"task": "<script>", "version": "v", "alias": "a", "headline": None}
    page = index_page({"m": card, "n": "<img src=x>"}).decode()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<img src=x>" not in page


# --- behind an authorizer (`modelfn serve --auth jwt`), as a JWT stage with playground "jwt" ---

ISSUER = LocalJwtIssuer()


@pytest.fixture
def jwt_gateway(tmp_path: Path) -> Iterator[Gateway]:
    authorizer = JwtAuthorizer(ISSUER.public_key, ISSUER.issuer, [ISSUER.audience])
    running = gateway_of(tmp_path, playground=True, authorizer=authorizer)
    yield running
    running.stop()


def test_with_jwt_the_page_files_open_and_the_model_data_needs_the_token(
    jwt_gateway: Gateway,
) -> None:
    folder = "/models/cifar10-cnn/"
    for page_file in ("page", "static/playground.js", "static/playground.css"):
        assert jwt_gateway.dispatch("GET", folder + page_file, {}, b"")[0] == 200, page_file
    bearer = {"authorization": f"Bearer {ISSUER.mint()}"}
    for model_data in ("card.json", "files/confusion_matrix.png"):
        status, _, body = jwt_gateway.dispatch("GET", folder + model_data, {}, b"")
        assert (status, body) == (401, b'{"message": "Unauthorized"}'), model_data
    assert jwt_gateway.dispatch("GET", folder + "card.json", bearer, b"")[0] == 200
    predict = jwt_gateway.dispatch("POST", folder + "predict", {}, b'{"inputs": []}')
    assert predict[0] == 401
    assert jwt_gateway.dispatch("GET", "/v2/health/ready", {}, b"")[0] == 401
    # Another model's page is still that model's function's answer, not an open door.
    assert jwt_gateway.dispatch("GET", "/models/other/page", {}, b"")[0] == 404


def test_with_jwt_the_index_links_each_page_without_its_card(jwt_gateway: Gateway) -> None:
    status, _, body = jwt_gateway.dispatch("GET", "/", {}, b"")
    page = body.decode()
    assert status == 200 and '<a href="models/cifar10-cnn/page">cifar10-cnn</a>' in page
    assert "accuracy" not in page and "image-classification" not in page  # the card's data
    assert "behind the API&#x27;s authorization" in page


def test_with_iam_even_the_page_files_need_a_signature(tmp_path: Path) -> None:
    # No deployed stage combines them (the synth refuses it); the gateway opens nothing anyway.
    running = gateway_of(
        tmp_path, playground=True, authorizer=IamAuthorizer([LocalCredentials.generate()])
    )
    try:
        assert running.dispatch("GET", "/models/cifar10-cnn/page", {}, b"")[0] == 403
    finally:
        running.stop()
