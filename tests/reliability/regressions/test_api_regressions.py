"""What the fuzzing of issue 11 found, each as the explicit request that found it.

Each test sends the request through the Lambda handler as a payload-2.0 event, on the tiny real
ONNX classifier of tests/functions/conftest.py (no published artifacts needed).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mangum import Mangum

from tests.functions.conftest import build_tiny_model, call, handler_for


@pytest.fixture
def handler(tmp_path: Path) -> Mangum:
    return handler_for(build_tiny_model(tmp_path / "build").folder, tmp_path)


def infer_body(request_id: str) -> bytes:
    # Raw JSON: "\ud800" is the escape a client's JSON encoder writes for a lone surrogate.
    data = ", ".join(["0"] * (3 * 32 * 32))
    return (
        f'{{"id": "{request_id}", "inputs": [{{"name": "input", "shape": [1, 3, 32, 32], '
        f'"datatype": "FP32", "data": [{data}]}}]}}'
    ).encode()


def test_an_id_with_a_lone_surrogate_is_a_400_not_a_500(handler: Mangum) -> None:
    """functions/routes/infer.py `InferenceRequest._echoable`: the id is echoed in the answer,
    and a lone surrogate has no UTF-8 form; serialising the answer raised, a 500."""
    reply = call(handler, "POST", "/v2/models/cifar10-cnn/infer", raw=infer_body("req-\\ud800"))
    assert reply.status == 400, reply.body
    assert reply.json()["error"].startswith("id: "), reply.json()


def test_an_id_of_any_other_unicode_is_echoed(handler: Mangum) -> None:
    reply = call(
        handler, "POST", "/v2/models/cifar10-cnn/infer", raw=infer_body("r\\u00e9q-\\ud83d\\ude00")
    )
    assert reply.status == 200, reply.body
    assert reply.json()["id"] == "r\u00e9q-\U0001f600"
