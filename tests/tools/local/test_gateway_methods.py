"""Every method, over HTTP, answered as the HTTP API answers it (issue 23 item 7): a method or
route the API does not have is its 404 JSON, never http.server's 501 HTML page; HEAD gets the
headers alone; with CORS origins the preflight is the API's own and answers carry the origin.

The tiny linear image model's real handler runs in this process behind a real gateway server.
"""

from __future__ import annotations

import asyncio
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelfn.api_routes import CORS_HEADERS, CORS_MAX_AGE_S, route_table
from tests.functions.conftest import build_tiny_model, handler_for
from tests.tools.local.test_api_docs import InProcessFunction
from tools.local.gateway import Gateway

ORIGIN = "https://app.example.com"
# Every method a client can send: the ones the routes use, the rest of RFC 9110's, WebDAV's
# and one of no standard at all (schemathesis found TRACE answered 501 in HTML).
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "FROBNICATE"]


class ThreadedFunction(InProcessFunction):
    """The handler called from the gateway's request threads, as a worker process would be:
    Mangum wants an event loop of the calling thread, which only the main one has by default."""

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        try:
            asyncio.get_event_loop()
        except RuntimeError:
            asyncio.set_event_loop(asyncio.new_event_loop())
        return super().invoke(event)


def start(root: Path, cors_origins: list[str]) -> Gateway:
    tiny = build_tiny_model(root / "build")
    function = ThreadedFunction(handler_for(tiny.folder, root / "cache"))
    gateway = Gateway(
        route_table(["cifar10-cnn"]),
        {"cifar10-cnn": function},  # type: ignore[dict-item]
        cors_origins=cors_origins,
    )
    gateway.start()
    return gateway


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = start(tmp_path_factory.mktemp("plain"), [])
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def with_cors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = start(tmp_path_factory.mktemp("cors"), [ORIGIN])
    yield gateway
    gateway.stop()


def request(
    gateway: Gateway, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    host, port = gateway.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


ROUTED = {("POST", "/models/cifar10-cnn/predict"), ("GET", "/v2/health/live")}
UNROUTED = [
    (method, path)
    for path in ["/models/cifar10-cnn/predict", "/v2/health/live", "/nowhere"]
    for method in METHODS
    if (method, path) not in ROUTED  # those reach the function (test_gateway.py)
]


@pytest.mark.parametrize(("method", "path"), UNROUTED)
def test_a_method_no_route_has_is_the_apis_404_json(plain: Gateway, method: str, path: str) -> None:
    status, headers, body = request(plain, method, path)
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"message": "Not Found"}


def test_head_gets_the_headers_alone(plain: Gateway) -> None:
    status, headers, body = request(plain, "HEAD", "/models/cifar10-cnn/predict")
    assert status == 404 and body == b""
    assert int(headers["content-length"]) == len(b'{"message": "Not Found"}')
    # The connection stays usable: a GET on it after HEAD is answered whole.
    status, _, body = request(plain, "GET", "/v2/health/live")
    assert status == 200 and body


def test_routed_methods_still_reach_the_function(plain: Gateway) -> None:
    status, headers, body = request(plain, "GET", "/v2/models/cifar10-cnn")
    assert status == 200 and json.loads(body)["name"] == "cifar10-cnn"
    assert "access-control-allow-origin" not in headers  # no CORS unless configured


def test_without_cors_a_preflight_is_a_404(plain: Gateway) -> None:
    status, headers, _ = request(
        plain,
        "OPTIONS",
        "/models/cifar10-cnn/predict",
        {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert status == 404 and "access-control-allow-origin" not in headers


def test_a_preflight_from_an_allowed_origin_is_the_apis_own_answer(with_cors: Gateway) -> None:
    status, headers, body = request(
        with_cors,
        "OPTIONS",
        "/models/cifar10-cnn/predict",
        {
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization",
        },
    )
    assert (status, body) == (204, b"")
    assert headers["access-control-allow-origin"] == ORIGIN
    assert headers["access-control-allow-methods"] == "GET,POST"
    assert headers["access-control-allow-headers"].split(",") == list(CORS_HEADERS)
    assert headers["access-control-max-age"] == str(CORS_MAX_AGE_S)


def test_a_preflight_from_another_origin_gets_no_cors_headers(with_cors: Gateway) -> None:
    status, headers, _ = request(
        with_cors,
        "OPTIONS",
        "/models/cifar10-cnn/predict",
        {"Origin": "https://evil.example.net", "Access-Control-Request-Method": "POST"},
    )
    assert status == 204
    assert not [k for k in headers if k.startswith("access-control-")]


def test_answers_carry_the_allowed_origin(with_cors: Gateway) -> None:
    status, headers, _ = request(with_cors, "GET", "/v2/models/cifar10-cnn", {"Origin": ORIGIN})
    assert status == 200 and headers["access-control-allow-origin"] == ORIGIN
    status, headers, _ = request(with_cors, "TRACE", "/nowhere", {"Origin": ORIGIN})
    assert status == 404 and headers["access-control-allow-origin"] == ORIGIN
    _, headers, _ = request(
        with_cors, "GET", "/v2/models/cifar10-cnn", {"Origin": "https://evil.example.net"}
    )
    assert "access-control-allow-origin" not in headers
