"""Fuzz each function's API from its own OpenAPI document, through the Lambda handler (issue 11).

Schemathesis reads the document the function serves at /openapi.json once its model is loaded
(the exact one for that model's task, functions/openapi.py) and generates requests for every
operation: schema-valid ones, and schema-breaking ones (negative mode). Each request goes to the
Lambda handler as the API Gateway HTTP API payload-2.0 event the gateway would send
(tools/local/events.py), so Mangum's event parsing and response encoding are fuzzed too, and
each answer is checked:

- no 5xx: the model is loaded, so not even a 503;
- no crash (the handler raises) and no hang: each call is bounded by CALL_TIMEOUT_S;
- status code, content type, headers and body conform to the document (schemathesis' checks);
  a schema-breaking request is refused with a 4xx;
- every 4xx is a JSON `{"error": "<what was wrong>"}`, the API's error object.

The models are the three registry models trained with their `tiny` presets on the real data
(the `published_store` fixture, tests/conftest.py). Every run is seeded by FUZZ_SEED
(`MODELFN_FUZZ_SEED` overrides it), and a failure names the seed and the event to replay.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from mangum import Mangum
from schemathesis import GenerationMode
from schemathesis.core.transport import Response

from functions.app import create_app
from functions.errors import is_openai_route
from functions.settings import FunctionSettings
from modelfn.store import LocalStore
from tests.reliability.conftest import scaled
from tools.local.events import http_api_event, response_parts
from tools.local.lambda_context import LocalLambdaContext

MODELS = ("cifar10-cnn", "ptb-lstm", "imdb-sentiment")
FUZZ_SEED = int(os.environ.get("MODELFN_FUZZ_SEED", "20261129"))
# Generated requests per operation (10 operations per model). The POST routes take the inputs, so they get
# the most; the GETs have only their path to vary.
POST_CASES = scaled(ci=40, soak=1000)
GET_CASES = scaled(ci=8, soak=100)
# Far above any answer here (the slowest, a batch of images, takes well under a second), far
# below the 15 s Lambda timeout: a call past it is a hang.
CALL_TIMEOUT_S = 10.0
BASE_URL = "http://localhost"

# Schemathesis' response checks that hold for this API. `positive_data_acceptance` does not:
# the document says what a request looks like (a string per input), not what every string is
# (a real PNG, a known word), so a schema-valid request may rightly get a 400.
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.negative_data_rejection,
]


class Hang(BaseException):
    """A handler call ran past CALL_TIMEOUT_S (a BaseException: the app's catch-all lets it by)."""


@dataclass
class Function:
    """One model's function: its Lambda handler, its document, and what the fuzzing saw."""

    model: str
    version: str
    handler: Mangum
    schema: Any
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)  # operation -> counts


def lambda_context(model: str) -> LocalLambdaContext:
    return LocalLambdaContext(function_name=model, memory_limit_in_mb=1024, timeout_s=15)


@pytest.fixture(scope="module", params=MODELS)
def function(
    request: pytest.FixtureRequest,
    published_store: LocalStore,
    tmp_path_factory: pytest.TempPathFactory,
) -> Function:
    model: str = request.param
    store = str(published_store.root)
    app = create_app(
        FunctionSettings(model=model, store_uri=store, cache_dir=tmp_path_factory.mktemp(model))
    )
    loaded = app.state.slot.model
    assert loaded is not None, f"{model} did not load from {store}"
    handler = Mangum(app, lifespan="off")
    event = http_api_event("GET", "/openapi.json")
    status, _, body = response_parts(handler(event, lambda_context(model)))
    assert status == 200, body
    schema = schemathesis.openapi.from_dict(json.loads(body))
    return Function(model, loaded.manifest.version, handler, schema)


@pytest.fixture
def alarm() -> Iterator[None]:
    """Raise Hang in the call that runs past CALL_TIMEOUT_S (SIGALRM: this is the main thread)."""

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"no answer within {CALL_TIMEOUT_S} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def as_event(case: Any) -> tuple[dict[str, Any], requests.PreparedRequest]:
    """The payload-2.0 event API Gateway sends for `case`, and the request it stands for."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL)
    kwargs.pop("timeout", None)
    kwargs.pop("allow_redirects", None)
    kwargs.pop("verify", None)
    prepared = requests.Request(**kwargs).prepare()
    url = urlsplit(prepared.url or "")
    body = prepared.body or b""
    event = http_api_event(
        prepared.method or "GET",
        url.path,
        query=url.query,
        headers=dict(prepared.headers),
        body=body.encode() if isinstance(body, str) else body,
    )
    return event, prepared


def invoke(function: Function, case: Any) -> tuple[Response, dict[str, Any]]:
    """Send `case` through the handler, bounded by CALL_TIMEOUT_S; schemathesis' Response."""
    event, prepared = as_event(case)
    started = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, CALL_TIMEOUT_S)
    try:
        result = function.handler(event, lambda_context(function.model))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    elapsed = time.perf_counter() - started
    status, headers, body = response_parts(result)
    response = Response(
        status_code=status,
        headers={name.lower(): [value] for name, value in headers.items()},
        content=body,
        request=prepared,
        elapsed=elapsed,
        verify=True,
    )
    return response, event


def replay_hint(function: Function, event: dict[str, Any]) -> str:
    shown = {
        k: event.get(k) for k in ("rawPath", "rawQueryString", "headers", "body", "isBase64Encoded")
    }
    return f"{function.model}, MODELFN_FUZZ_SEED={FUZZ_SEED}; event: {json.dumps(shown)[:2000]}"


def check_error_body(response: Response, hint: str, openai: bool = False) -> None:
    """A 4xx is the API's error object: JSON `{"error": "<non-empty message>"}`; on an
    OpenAI-compatible route, OpenAI's `{"error": {"message": "<non-empty message>", ...}}`."""
    if not 400 <= response.status_code < 500:
        return
    try:
        body = json.loads(response.content)
    except ValueError:
        pytest.fail(
            f"{response.status_code} without a JSON body ({response.content[:200]!r}); {hint}"
        )
    assert isinstance(body, dict) and set(body) == {"error"}, f"{body!r}; {hint}"
    error = body["error"]
    message = error.get("message") if openai and isinstance(error, dict) else error
    assert isinstance(message, str) and message.strip(), f"{body!r}; {hint}"


def operations(function: Function) -> list[Any]:
    return [result.ok() for result in function.schema.get_all_operations()]


def case_strategy(function: Function, operation: Any) -> st.SearchStrategy[Any]:
    """The document's own examples (real held-out inputs, which reach the model and answer 200),
    schema-valid and schema-breaking requests. Most name the served model and version, so they
    reach the model instead of ending in a 404; some take the path parameters schemathesis makes."""
    served = {"name": function.model, "version": function.version}
    names = {p.name for p in operation.path_parameters}
    fixed = {k: v for k, v in served.items() if k in names}
    valid = operation.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed)
    strategies = [
        *operation.get_strategies_from_examples(),
        valid,
        valid,
        operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=fixed),
    ]
    if fixed:
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE))
    return st.one_of(strategies)


def test_every_answer_fits_the_document(function: Function, alarm: None) -> None:
    """Schemathesis' requests through the Lambda handler: no 5xx, crash or hang; answers conform."""
    failures = []
    for operation in operations(function):
        label = f"{operation.method.upper()} {operation.path}"
        counts = function.statuses.setdefault(label, {})
        cases = POST_CASES if operation.method == "post" else GET_CASES

        @seed(FUZZ_SEED)
        @settings(
            max_examples=cases,
            deadline=None,
            database=None,
            derandomize=False,
            suppress_health_check=list(HealthCheck),
            print_blob=True,
        )
        @given(case=case_strategy(function, operation))
        def fuzz(case: Any) -> None:
            response, event = invoke(function, case)
            # Runs within this iteration (called just below), so `counts` is this operation's.
            counts[response.status_code] = counts.get(response.status_code, 0) + 1  # noqa: B023
            hint = replay_hint(function, event)
            # No wall-time assert here: the SIGALRM guard (`alarm`) turns a call that runs past
            # CALL_TIMEOUT_S into a Hang, which fails the run by name.
            assert response.status_code < 500, (
                f"{response.status_code} {response.content[:300]!r}; {hint}"
            )
            openai = is_openai_route(case.path)  # OpenAI's error shape on its routes
            check_error_body(response, hint, openai=openai)
            try:
                case.validate_response(response, checks=CHECKS)
            except Exception as exc:  # schemathesis' FailureGroup, with every check that failed
                raise AssertionError(f"{exc}\n{hint}") from exc

        try:
            fuzz()
        except Exception as exc:  # noqa: BLE001 - every operation runs; all failures are shown
            failures.append(f"{label}: {exc}")
    total = sum(sum(c.values()) for c in function.statuses.values())
    print(f"{function.model}: {total} requests, seed {FUZZ_SEED}; statuses per operation:")
    for label, counts in function.statuses.items():
        print(f"  {label}: {dict(sorted(counts.items()))}")
    assert not failures, "\n\n".join(failures)
    # Refusing everything would pass every check above: each POST operation must also have
    # served at least one generated request (positive cases are in every strategy). OpenAI's
    # embeddings route is every function's but serves feature extractors only, none of these:
    # it must have answered 404 (naming the model's task), never 200.
    embeddings = function.statuses.pop("POST /models/{name}/v1/embeddings")
    assert embeddings.get(404) and not embeddings.get(200), embeddings
    unserved = [
        label
        for label, counts in function.statuses.items()
        if label.startswith("POST ") and not counts.get(200)
    ]
    assert not unserved, f"no generated request was answered 200 by: {unserved}"
