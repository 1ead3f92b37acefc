"""One structured log line per request that is also its CloudWatch EMF metrics, and nothing of
the request's content in any log."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from mangum import Mangum

from functions import observability
from functions.app import create_app
from functions.settings import FunctionSettings
from tests.functions.conftest import MODEL, TinyModel, encode_image, random_pixels
from tools.local.events import http_api_event, response_parts
from tools.local.lambda_context import LocalLambdaContext

PREDICT = f"/models/{MODEL}/predict"
EMF_UNITS = {"Milliseconds", "Count"}


def check_emf(line: dict[str, Any]) -> None:
    """The rules of the Embedded Metric Format specification that CloudWatch enforces."""
    meta = line["_aws"]
    assert isinstance(meta["Timestamp"], int) and meta["Timestamp"] > 1.7e12
    assert meta["CloudWatchMetrics"]
    for directive in meta["CloudWatchMetrics"]:
        assert directive["Namespace"] == "modelfn"
        for dimension_set in directive["Dimensions"]:
            assert 1 <= len(dimension_set) <= 30
            for key in dimension_set:
                assert isinstance(line[key], str) and line[key], key  # a dimension is a string
        for metric in directive["Metrics"]:
            assert metric["Unit"] in EMF_UNITS
            value = line[metric["Name"]]  # a number, or an array of up to 100 numbers
            values = value if isinstance(value, list) else [value]
            assert 1 <= len(values) <= 100
            assert all(isinstance(v, int | float) for v in values), metric["Name"]


def emf_lines(text: str) -> list[dict[str, Any]]:
    lines = [json.loads(row) for row in text.splitlines() if row.startswith("{")]
    return [line for line in lines if "_aws" in line]


def send(handler: Mangum, method: str, path: str, body: Any = None) -> tuple[int, str]:
    context = LocalLambdaContext(function_name=MODEL, memory_limit_in_mb=1024, timeout_s=15)
    data = b"" if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json"} if data else None
    status, _, _ = response_parts(
        handler(http_api_event(method, path, headers=headers, body=data), context)
    )
    return status, context.aws_request_id


def test_each_request_writes_one_line_with_its_log_fields_and_metrics(
    published: TinyModel,
    settings: FunctionSettings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler = Mangum(create_app(settings), lifespan="off")
    load_lines = [line for line in emf_lines(capsys.readouterr().out) if "ModelLoadTime" in line]
    assert len(load_lines) == 1 and load_lines[0]["model"] == MODEL
    check_emf(load_lines[0])

    monkeypatch.setattr(observability, "_cold", True)  # this process served requests before
    image = encode_image(random_pixels(1)[0])
    requests: list[tuple[str, str, Any]] = [
        ("POST", PREDICT, {"inputs": [image, image]}),
        ("POST", PREDICT, {"inputs": ["not an image"]}),
        ("POST", "/models/other-model/predict", {"inputs": [image]}),
        ("GET", "/no/such/route", None),
        ("GET", f"/v2/models/{MODEL}", None),
    ]
    sent, wall_ms = [], []
    for method, path, body in requests:
        started = time.perf_counter()
        sent.append(send(handler, method, path, body))
        wall_ms.append((time.perf_counter() - started) * 1000)
    lines = emf_lines(capsys.readouterr().out)
    assert len(lines) == len(requests)  # one line per request, no more
    for line in lines:
        check_emf(line)
    ok, bad, unknown, no_route, metadata = lines
    version = published.manifest.version
    assert (
        [line["status"] for line in lines]
        == [status for status, _ in sent]
        == [200, 400, 404, 404, 200]
    )
    assert [line["request_id"] for line in lines] == [request_id for _, request_id in sent]
    assert ok["route"] == "POST /models/{name}/predict" and ok["version"] == version
    assert (ok["Inputs"], ok["cold_start"], ok["ColdStart"]) == (2, True, 1)
    # The logged duration is this request's, in milliseconds: within what the test saw the call
    # take around it (a duration in seconds, or since the process started, fails).
    # Latency is that same number (the log field is rounded to the microsecond).
    assert 0 < ok["duration_ms"] <= wall_ms[0]
    assert ok["Latency"] == pytest.approx(ok["duration_ms"], abs=1e-3)
    assert "Errors" not in ok
    assert [line["cold_start"] for line in lines[1:]] == [False] * 4
    assert (bad["error_type"], bad["status_code"], bad["Errors"], bad["level"]) == (
        "BadInput",
        "400",
        1,
        "WARNING",
    )
    assert unknown["error_type"] == "UnknownModel" and unknown["version"] is None
    # An unknown path becomes no dimension of its own: the metric cardinality stays bounded.
    assert (no_route["route"], no_route["error_type"]) == ("unmatched", "NoSuchRoute")
    assert metadata["route"] == "GET /v2/models/{name}" and "Inputs" not in metadata
    errors = [d for d in bad["_aws"]["CloudWatchMetrics"] if d["Metrics"][0]["Name"] == "Errors"]
    assert errors[0]["Dimensions"] == [["service", "model", "status_code", "error_type"]]


def test_no_request_content_reaches_any_log(
    published: TinyModel,
    settings: FunctionSettings,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = Mangum(create_app(settings), lifespan="off")
    image = encode_image(random_pixels(1, seed=7)[0])
    secret = "a-private-review-text-7f3a"
    send(handler, "POST", PREDICT, {"inputs": [image]})
    send(handler, "POST", PREDICT, {"inputs": [secret]})  # a 400 that names inputs[0], not its text
    send(handler, "POST", PREDICT, {"inputs": [image], "parameters": {secret: 1}})
    captured = capsys.readouterr()
    everything = captured.out + captured.err + caplog.text
    assert secret not in everything
    assert image[:40] not in everything


def test_a_5xx_answer_counts_in_the_models_server_errors_series() -> None:
    record = observability.RequestRecord(
        route="POST /models/{name}/predict", error_type="ModelUnavailable"
    )
    unavailable = observability.request_line(MODEL, 503, 3.0, record, False, "r-503")
    series = {
        d["Metrics"][0]["Name"]: d["Dimensions"] for d in unavailable["_aws"]["CloudWatchMetrics"]
    }
    # One series per model an alarm can name (infra/constructs/code_deploy.py), beside the
    # Errors series by status and error type.
    assert series["ServerErrors"] == [["service", "model"]]
    assert unavailable["ServerErrors"] == 1 and unavailable["Errors"] == 1
    refused = observability.request_line(MODEL, 400, 3.0, record, False, "r-400")
    assert "ServerErrors" not in refused  # a client's mistake is no reason to roll back
    assert "ServerErrors" not in [
        d["Metrics"][0]["Name"] for d in refused["_aws"]["CloudWatchMetrics"]
    ]
