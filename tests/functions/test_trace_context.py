"""Trace context (issue 23 item 6): W3C traceparent/tracestate, else X-Amzn-Trace-Id, else a new
trace; the trace id in every log line, `traceparent` on every answer; a malformed header is
ignored, never an error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mangum import Mangum

from functions.trace_context import MAX_TRACESTATE, TraceContext, trace_context
from tests.functions.conftest import MODEL, TinyModel, call, encode_image, random_pixels

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"  # the W3C recommendation's example
PARENT = "00f067aa0ba902b7"
GOOD = f"00-{TRACE}-{PARENT}-01"


def context_of(**headers: str) -> TraceContext:
    return trace_context([(k.encode(), v.encode()) for k, v in headers.items()])


def test_a_valid_traceparent_continues_its_trace_in_a_new_span() -> None:
    trace = context_of(traceparent=GOOD, tracestate="congo=t61rcWkgMzE")
    assert (trace.trace_id, trace.parent_id, trace.sampled) == (TRACE, PARENT, True)
    assert trace.span_id != PARENT and len(trace.span_id) == 16
    assert trace.tracestate == "congo=t61rcWkgMzE"
    assert trace.traceparent() == f"00-{TRACE}-{trace.span_id}-01"
    unsampled = context_of(traceparent=f"00-{TRACE}-{PARENT}-00")
    assert unsampled.sampled is False and unsampled.traceparent().endswith("-00")


def test_a_later_version_is_read_as_version_00() -> None:
    assert context_of(traceparent=f"cc-{TRACE}-{PARENT}-01-what-the-future-adds").trace_id == TRACE


@pytest.mark.parametrize(
    "malformed",
    [
        "",
        "garbage",
        f"00-{TRACE}-{PARENT}",  # no flags
        f"00-{TRACE.upper()}-{PARENT}-01",  # upper case
        f"00-{'0' * 32}-{PARENT}-01",  # the all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # the all-zero parent id
        f"ff-{TRACE}-{PARENT}-01",  # version ff is invalid
        f"00-{TRACE}-{PARENT}-01-extra",  # version 00 has exactly four fields
        f"00-{TRACE[:-1]}-{PARENT}-01",  # a short trace id
        f"00-{TRACE}-{PARENT}-0g",
    ],
)
def test_a_malformed_traceparent_starts_a_new_trace_and_drops_tracestate(malformed: str) -> None:
    trace = context_of(traceparent=malformed, tracestate="congo=t61rcWkgMzE")
    assert trace.trace_id != TRACE and len(trace.trace_id) == 32
    assert trace.parent_id is None and trace.tracestate is None


def test_an_overlong_tracestate_is_dropped_the_trace_kept() -> None:
    trace = context_of(traceparent=GOOD, tracestate="a=" + "b" * MAX_TRACESTATE)
    assert trace.trace_id == TRACE and trace.tracestate is None


def test_x_amzn_trace_id_is_the_same_trace_written_otherwise() -> None:
    trace = context_of(
        **{
            "X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        }
    )
    assert trace.trace_id == "5759e988bd862e3fe1be46a994272793"
    assert (trace.parent_id, trace.sampled) == ("53995c3f42cd8ad8", True)
    # traceparent wins where both are sent; a malformed Root is ignored.
    both = context_of(
        traceparent=GOOD, **{"X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793"}
    )
    assert both.trace_id == TRACE
    assert context_of(**{"X-Amzn-Trace-Id": "Root=2-nothex"}).trace_id != TRACE


def test_without_headers_each_request_starts_its_own_trace() -> None:
    first, second = context_of(), context_of()
    assert first.trace_id != second.trace_id and first.parent_id is None


def log_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(row) for row in text.splitlines() if row.startswith("{")]


def test_the_answer_carries_traceparent_and_the_log_line_the_trace_id(
    handler: Mangum, published: TinyModel, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    image = encode_image(random_pixels(1, seed=3)[0])
    reply = call(
        handler,
        "POST",
        f"/models/{MODEL}/predict",
        {"inputs": [image]},
        headers={"traceparent": GOOD, "tracestate": "congo=t61rcWkgMzE"},
    )
    assert reply.status == 200
    version, trace_id, span, flags = reply.headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE, "01") and span != PARENT
    assert reply.headers["tracestate"] == "congo=t61rcWkgMzE"
    [line] = [row for row in log_lines(capsys.readouterr().out) if row.get("message") == "request"]
    assert line["trace_id"] == TRACE


@pytest.mark.parametrize("header", ["00-nonsense", f"00-{TRACE}-{PARENT}-01-x", "\u00ff" * 3])
def test_a_malformed_header_is_no_error(handler: Mangum, published: TinyModel, header: str) -> None:
    reply = call(handler, "GET", f"/v2/models/{MODEL}", headers={"traceparent": header})
    assert reply.status == 200
    assert reply.headers["traceparent"].split("-")[1] != TRACE


def test_an_error_answer_names_its_trace_too(
    handler: Mangum, published: TinyModel, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    reply = call(
        handler, "POST", f"/models/{MODEL}/predict", {"inputs": []}, headers={"traceparent": GOOD}
    )
    assert reply.status == 400 and reply.headers["traceparent"].split("-")[1] == TRACE
    [line] = [row for row in log_lines(capsys.readouterr().out) if row.get("message") == "request"]
    assert line["trace_id"] == TRACE and line["status"] == 400


def test_events_logged_during_a_request_name_its_trace() -> None:
    import asyncio

    from functions.log import logger
    from functions.observability import RequestTelemetryMiddleware

    inside: dict[str, object] = {}

    async def app(scope: dict[str, object], receive: object, send: Any) -> None:
        # What every event the request logs through functions/log.py carries.
        inside.update(logger.get_current_keys())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    middleware = RequestTelemetryMiddleware(app, model=MODEL)  # type: ignore[arg-type]
    scope = {"type": "http", "headers": [(b"traceparent", GOOD.encode())]}
    asyncio.run(middleware(scope, receive, send))  # type: ignore[arg-type]
    assert inside["trace_id"] == TRACE
    assert "trace_id" not in logger.get_current_keys()  # not the next request's
    [(name, value)] = sent[0]["headers"]
    assert name == b"traceparent" and value.decode().split("-")[1] == TRACE
