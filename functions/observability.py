"""What a function tells CloudWatch about each request: one JSON log line and one EMF metrics line.

`RequestTelemetryMiddleware` (the app's outermost layer) times every request and, when it ends,
writes ONE JSON line to stdout that is both its structured log and its metrics in CloudWatch's
Embedded Metric Format (EMF), namespace `modelfn`:
- log fields: level, message, service, request id, trace id (functions/trace_context.py, also on
  every event the request logs, and returned as `traceparent`), route, status, model, version,
  cold-start flag, duration, inputs and the error type; never a request body, a text or an image;
- metrics by service, model and route: `Latency` (ms), `Requests`, `Inputs` (per request, where
  the route takes inputs), `ColdStart` on a sandbox's first request; and for a failed request
  `Errors` by service, model, status and error type, and for a 5xx answer `ServerErrors` by
  service and model (what a code deploy's rollback alarm counts, infra/constructs/code_deploy.py);
- while a canary rollout is live (docs/serving.md), the request metrics and `ServerErrors` by
  service, model and version as well, what `modelfn rollout` and the canary checker read. Only
  then: a version dimension on every request would add a metric series per version for good.
Events (model loaded, alias moved, failures with their traces) go through the Powertools Logger
(functions/log.py), and `ModelLoadTime` (ms) through Powertools' `single_metric` whenever a
version is loaded (`record_model_load`).

Routes, dependencies and error handlers add to the current request's record through a context
variable (`current_request()`): every route is async and runs in the middleware's task.
"""

from __future__ import annotations

import os
import sys
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import pydantic_core
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from functions.capture import CaptureDraft, capture_line, sample
from functions.log import logger
from functions.trace_context import trace_context

NAMESPACE = "modelfn"
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "modelfn-function"


@dataclass
class RequestRecord:
    """What one request did, filled in as it runs."""

    route: str = "unmatched"  # the route template ('POST /models/{name}/predict'), set on match
    version: str | None = None
    precision: str | None = None  # the graph that answered (fp32 or int8), with the version
    inputs: int | None = None
    error_type: str | None = None
    trace_id: str | None = None  # functions/trace_context.py
    # A canary rollout is live: the request's metrics are also split by version (see request_line).
    canary_live: bool = False
    # Drawn for capture (functions/capture.py): the adapters and routes fill it in as they run.
    capture: CaptureDraft | None = None


_current: ContextVar[RequestRecord | None] = ContextVar("modelfn_request", default=None)
_cold = True  # the sandbox's first request is its cold start


def current_request() -> RequestRecord:
    """The record of the request being served (a throwaway one outside a request)."""
    return _current.get() or RequestRecord()


def capture_draft() -> CaptureDraft | None:
    """The record of the request being served, where it was drawn for capture; else None."""
    record = _current.get()
    return None if record is None else record.capture


def request_line(
    model: str, status: int, ms: float, record: RequestRecord, cold: bool, request_id: str
) -> dict[str, Any]:
    """One request as one JSON object: its structured log fields and its EMF metrics.

    Metric directives share the line: latency, requests, inputs and cold starts by model and
    route; errors by model, status and error type; 5xx answers by model.
    """
    metrics = [{"Name": "Latency", "Unit": "Milliseconds"}, {"Name": "Requests", "Unit": "Count"}]
    line: dict[str, Any] = {
        "level": "INFO",
        "message": "request",
        "service": SERVICE,
        "model": model,
        "route": record.route,  # a template, so raw paths never become dimensions
        "status": status,
        "request_id": request_id,
        "trace_id": record.trace_id,
        "version": record.version,
        "precision": record.precision,
        "cold_start": cold,
        "duration_ms": round(ms, 3),
        "Latency": ms,
        "Requests": 1,
    }
    if record.inputs is not None:
        metrics.append({"Name": "Inputs", "Unit": "Count"})
        line["Inputs"] = line["inputs"] = record.inputs
    if cold:
        metrics.append({"Name": "ColdStart", "Unit": "Count"})
        line["ColdStart"] = 1
    # During a canary, the same values by version too (one more dimension set, no more values).
    by_version = record.canary_live and record.version is not None
    version_set = [["service", "model", "version"]] if by_version else []
    directives = [
        {
            "Namespace": NAMESPACE,
            "Dimensions": [["service", "model", "route"], *version_set],
            "Metrics": metrics,
        }
    ]
    if status >= 400:
        line["level"] = "WARNING" if status < 500 else "ERROR"
        line["error_type"] = record.error_type or f"HTTP{status}"
        line["status_code"] = str(status)  # a dimension's value must be a string
        line["Errors"] = 1
        directives.append(
            {
                "Namespace": NAMESPACE,
                "Dimensions": [["service", "model", "status_code", "error_type"]],
                "Metrics": [{"Name": "Errors", "Unit": "Count"}],
            }
        )
    if status >= 500:
        # One series per model that an alarm can name (the Errors series split by status and
        # error type cannot be summed by an alarm): the code deploy's rollback alarm counts
        # the 5xx the app answers itself, which Lambda's own Errors never sees.
        line["ServerErrors"] = 1
        directives.append(
            {
                "Namespace": NAMESPACE,
                "Dimensions": [["service", "model"], *version_set],
                "Metrics": [{"Name": "ServerErrors", "Unit": "Count"}],
            }
        )
    line["_aws"] = {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": directives}
    return line


def record_model_load(model: str, version: str, seconds: float) -> None:
    with single_metric(
        name="ModelLoadTime",
        unit=MetricUnit.Milliseconds,
        value=seconds * 1000,
        namespace=NAMESPACE,
        default_dimensions={"service": SERVICE, "model": model},
    ) as metric:
        metric.add_metadata("version", version)


class RequestTelemetryMiddleware:
    """Times each HTTP request and writes its log line and metrics once it is answered."""

    def __init__(
        self, app: ASGIApp, model: str, capture_rate: float = 0.0, capture_raw: bool = False
    ) -> None:
        self.app = app
        self.model = model
        self.capture_rate = capture_rate
        self.capture_raw = capture_raw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        global _cold
        cold, _cold = _cold, False
        started = time.perf_counter()
        trace = trace_context(scope["headers"])
        record = RequestRecord(
            trace_id=trace.trace_id, capture=sample(self.capture_rate, self.capture_raw)
        )
        token = _current.set(record)
        # The events the request logs (functions/log.py) name its trace too; one request at a
        # time per sandbox, so the logger's keys are this request's until it ends.
        logger.append_keys(trace_id=trace.trace_id)
        status = 500
        answer_headers = [(b"traceparent", trace.traceparent().encode())]
        if trace.tracestate is not None:
            answer_headers.append((b"tracestate", trace.tracestate.encode("latin-1")))

        async def status_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), *answer_headers]
            await send(message)

        try:
            await self.app(scope, receive, status_send)
        finally:
            logger.remove_keys(["trace_id"])
            _current.reset(token)
            ms = (time.perf_counter() - started) * 1000
            context = scope.get("aws.context")
            request_id = getattr(context, "aws_request_id", None) or "local"
            line = request_line(self.model, status, ms, record, cold, request_id)
            # Written straight to stdout, the way Powertools writes EMF: the Logger and the
            # metrics provider together cost 126 us per request here, this line 6 us
            # (pydantic-core's encoder: 3.8 us, json.dumps 13.5 us).
            text = pydantic_core.to_json(line).decode() + "\n"
            draft = record.capture
            took_inputs = record.inputs is not None or (draft and draft.features is not None)
            if draft is not None and took_inputs and status < 400 and record.version is not None:
                # The record follows its request line in the same write: one call, and a sandbox
                # frozen after answering has already handed both to the log stream.
                captured = capture_line(
                    draft,
                    service=SERVICE,
                    model=self.model,
                    version=record.version,
                    precision=record.precision,
                    route=record.route,
                    status=status,
                    latency_ms=ms,
                    request_id=request_id,
                    trace_id=record.trace_id,
                )
                text += pydantic_core.to_json(captured).decode() + "\n"
            sys.stdout.write(text)
