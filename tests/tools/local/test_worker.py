"""Function processes and the gateway's answers when a function misbehaves (as API Gateway does)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from modelfn.api_routes import Route
from tools.local.gateway import Gateway
from tools.local.worker import LocalFunction, WorkerError

ROUTE = Route("GET", "/probe")


@pytest.fixture
def gateway_for() -> Iterator[object]:
    started: list[tuple[Gateway, LocalFunction]] = []

    def start(handler: str, timeout_s: int = 15) -> tuple[Gateway, LocalFunction]:
        fn = LocalFunction(
            "probe",
            {"MODELFN_MODEL": "probe"},
            128,
            timeout_s,
            handler_ref=f"tests.support.handlers:{handler}",
        )
        fn.start()
        fn.wait_ready()
        gateway = Gateway([(ROUTE, "probe")], {"probe": fn})
        gateway.start()
        started.append((gateway, fn))
        return gateway, fn

    yield start
    for gateway, fn in started:
        gateway.stop()
        fn.stop()


def test_handler_gets_a_context_and_the_route_key(gateway_for) -> None:  # type: ignore[no-untyped-def]
    gateway, fn = gateway_for("echo")
    body = httpx.get(f"{gateway.url}/probe", timeout=10).json()
    assert body["routeKey"] == "GET /probe" and body["function"] == "probe"
    assert 0 < body["remaining_ms"] <= 15_000
    assert body["pid"] == fn._process.pid


def test_raising_handler_is_a_500_and_the_process_lives_on(gateway_for) -> None:  # type: ignore[no-untyped-def]
    gateway, fn = gateway_for("raises")
    pid = fn._process.pid
    response = httpx.get(f"{gateway.url}/probe", timeout=10)
    assert response.status_code == 500 and response.json() == {"message": "Internal Server Error"}
    assert fn._process.pid == pid


def test_crashed_process_is_a_500_and_is_replaced(gateway_for) -> None:  # type: ignore[no-untyped-def]
    gateway, fn = gateway_for("crash")
    pid = fn._process.pid
    assert httpx.get(f"{gateway.url}/probe", timeout=30).status_code == 500
    assert fn._process is not None and fn._process.pid != pid


def test_timeout_is_a_500_and_the_sandbox_is_replaced(gateway_for) -> None:  # type: ignore[no-untyped-def]
    gateway, fn = gateway_for("slow", timeout_s=1)
    pid = fn._process.pid
    assert httpx.get(f"{gateway.url}/probe", timeout=30).status_code == 500
    assert fn._process.pid != pid


def test_init_failure_is_reported_with_the_cause() -> None:
    fn = LocalFunction("broken", {}, 128, 5, handler_ref="tests.support.no_such_module:handler")
    fn.start()
    with pytest.raises(WorkerError, match="(?s)init failed.*no_such_module"):
        fn.wait_ready(timeout=60)


def test_bad_content_length_is_a_400(gateway_for) -> None:  # type: ignore[no-untyped-def]
    import socket

    gateway, _ = gateway_for("echo")
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /probe HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400")
