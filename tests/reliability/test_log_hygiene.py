"""Requests carrying credentials, tokens and canary bodies leave none of them in the logs.

The session-wide scan (tests/log_hygiene.py) covers everything the suite logs; this module makes
sure there is something to find if the functions ever logged a header or a body: every model's
handler answers good and bad requests that carry a SigV4 Authorization header, a session token,
a bearer token and canary bodies, and the test checks its own captured output too.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import secrets
from pathlib import Path

import numpy as np
import pytest
from mangum import Mangum
from PIL import Image

from functions.app import create_app
from functions.settings import FunctionSettings
from modelfn.store import LocalStore
from tests.log_hygiene import CANARY_TEXT, SECRETS, findings, remember_secret
from tools.local.events import http_api_event, response_parts
from tools.local.lambda_context import LocalLambdaContext

SIGNATURE = remember_secret("SigV4 signature (canary)", "5f" * 32)
SESSION_TOKEN = remember_secret(
    "session token (canary)", "IQoJb3JpZ2luX2VjEXAMPLEsessionTOKENvalue0123456789abcdef=="
)
JWT = remember_secret(
    "bearer token (canary)",
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjYW5hcnktdXNlciJ9.c2lnbmF0dXJlLWNhbmFyeQ",
)
CREDENTIALS = {
    "authorization": (
        "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLEKEY123456/20261129/eu-west-1/execute-api/"
        f"aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature={SIGNATURE}"
    ),
    "x-amz-security-token": SESSION_TOKEN,
    "x-amz-date": "20261129T000000Z",
}
BEARER = {"authorization": f"Bearer {JWT}"}
# A secret with no recognisable shape: only the literal search can find it.
SHAPELESS = remember_secret("shapeless secret (canary)", "k9-plain-Secret-with-no-shape")


def forms(name: str, value: str) -> dict[str, str]:
    """Each way a header and its value can reach a log line."""
    return {
        "header line": f"{name}: {value}",
        "JSON": json.dumps({"headers": {name: value}}),
        "dict repr": repr({name: value}),
        "ASGI byte pairs": repr([(name.encode(), value.encode())]),
        "bytes": repr(f"{name}={value}".encode()),
        "event JSON, escaped": json.dumps(json.dumps({"headers": {name: value}})),
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("x-amz-security-token", SESSION_TOKEN),
        ("authorization", CREDENTIALS["authorization"]),
        ("authorization", BEARER["authorization"]),
        ("x-api-key", SHAPELESS),
        ("aws_secret_access_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ],
)
def test_the_guard_flags_each_secret_in_every_form_a_log_holds_it(name: str, value: str) -> None:
    for form, text in forms(name, value).items():
        assert findings(f"INFO request {text} done", "log"), f"{name} missed as {form}: {text}"


def test_the_guard_flags_bodies_and_keys_and_leaves_ordinary_lines_alone() -> None:
    assert findings(f'{{"inputs": ["{CANARY_TEXT}"]}}', "log")
    assert findings(f"data:image/png;base64,{png_base64()}", "log")
    assert findings("-----BEGIN RSA PRIVATE KEY-----\nMIIE", "log")
    ordinary = (
        '{"level":"INFO","message":"request","model":"cifar10-cnn","status":200,'
        '"route":"POST /models/{name}/predict","x-amz-date":"20261129T000000Z"}'
    )
    assert findings(ordinary, "log") == []


def test_a_generated_secret_is_found_once_remembered() -> None:
    secret = secrets.token_urlsafe(30)
    assert findings(f"key {secret}", "log") == []
    remember_secret("generated in this test", secret)
    try:
        assert findings(repr({"k": secret}), "log") == ["generated in this test (its value) in log"]
    finally:
        SECRETS.pop("generated in this test")


def png_base64() -> str:
    buffer = io.BytesIO()
    pixels = np.random.default_rng(7).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def bodies(model: str) -> list[bytes]:
    """A good request and a bad one, each carrying the canary (text models) or a PNG (images)."""
    if model == "cifar10-cnn":
        good = {"inputs": [png_base64()]}
        bad = {"inputs": [png_base64()], "parameters": {"top_k": CANARY_TEXT}}
    else:
        good = {"inputs": [CANARY_TEXT]}
        bad = {"inputs": [CANARY_TEXT, ""], "parameters": {"unknown": CANARY_TEXT}}
    raw_bad = b'{"inputs": ["' + CANARY_TEXT.encode() + b'"'  # not JSON at all
    return [json.dumps(good).encode(), json.dumps(bad).encode(), raw_bad]


@pytest.mark.parametrize("model", ["cifar10-cnn", "ptb-lstm", "imdb-sentiment"])
def test_headers_and_bodies_stay_out_of_the_logs(
    model: str,
    published_store: LocalStore,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = FunctionSettings(
        model=model, store_uri=str(published_store.root), cache_dir=tmp_path / "cache"
    )
    handler = Mangum(create_app(settings), lifespan="off")
    context = LocalLambdaContext(function_name=model, memory_limit_in_mb=1024, timeout_s=15)
    statuses = []
    for headers in (CREDENTIALS, BEARER):
        for body in bodies(model):
            event = http_api_event(
                "POST",
                f"/models/{model}/predict",
                headers={"content-type": "application/json", **headers},
                body=body,
                route_key="POST /models/{name}/predict",
                path_parameters={"name": model},
            )
            status, _, _ = response_parts(handler(event, context))
            statuses.append(status)
    # The requests were served and refused as usual: the scan below is of real log output.
    assert statuses.count(200) == 2 and all(400 <= s < 500 for s in statuses if s != 200)
    out, err = capfd.readouterr()
    logged = out + err + "\n".join(r.getMessage() for r in caplog.records)
    assert '"status":200' in out.replace(" ", "")  # the request lines were written
    assert not findings(logged, model), logged[-3000:]
