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
from pathlib import Path

import numpy as np
import pytest
from mangum import Mangum
from PIL import Image

from functions.app import create_app
from functions.settings import FunctionSettings
from modelfn.store import LocalStore
from tests.log_hygiene import CANARY_TEXT, findings
from tools.local.events import http_api_event, response_parts
from tools.local.lambda_context import LocalLambdaContext

SIGNATURE = "5f" * 32
CREDENTIALS = {
    "authorization": (
        "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLEKEY123456/20261129/eu-west-1/execute-api/"
        f"aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature={SIGNATURE}"
    ),
    "x-amz-security-token": "IQoJb3JpZ2luX2VjEXAMPLEsessionTOKENvalue0123456789abcdef==",
    "x-amz-date": "20261129T000000Z",
}
BEARER = {
    "authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjYW5hcnktdXNlciJ9.c2lnbmF0dXJlLWNhbmFyeQ"
}


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
