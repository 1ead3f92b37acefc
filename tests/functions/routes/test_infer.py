"""POST /v2/models/{name}[/versions/{v}]/infer: Open Inference Protocol v2 request and response."""

from __future__ import annotations

import math
import uuid
from typing import Any

import numpy as np
import pytest
from mangum import Mangum

from functions.errors import BadInput
from functions.limits import MAX_BATCH
from functions.tensors import from_json
from tests.functions.conftest import MODEL, TinyModel, call, random_pixels

INFER = f"/v2/models/{MODEL}/infer"


def tensor(
    data: Any, shape: list[int], name: str = "input", datatype: str = "FP32"
) -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def test_flat_data_gives_the_graph_logits(handler: Mangum, published: TinyModel) -> None:
    batch = published.normalise(random_pixels(2))
    request = {"id": "42", "inputs": [tensor(batch.ravel().tolist(), [2, 3, 32, 32])]}
    reply = call(handler, "POST", INFER, request)
    assert reply.status == 200
    body = reply.json()
    assert body.keys() == {"model_name", "model_version", "id", "parameters", "outputs"}
    assert body["parameters"] == {"precision": "fp32"}
    assert (body["model_name"], body["model_version"], body["id"]) == (
        MODEL,
        published.manifest.version,
        "42",
    )
    (output,) = body["outputs"]
    assert (output["name"], output["shape"], output["datatype"]) == ("logits", [2, 10], "FP32")
    assert output["data"] == pytest.approx(published.logits(batch).ravel().tolist(), abs=1e-4)


def test_nested_data_and_requested_outputs_are_honoured(
    handler: Mangum, published: TinyModel
) -> None:
    batch = published.normalise(random_pixels(1))
    request = {
        "inputs": [tensor(batch.tolist(), [1, 3, 32, 32])],
        "outputs": [{"name": "logits"}],
        "parameters": {"content_type": "np"},
    }
    reply = call(handler, "POST", INFER, request)
    assert reply.status == 200
    body = reply.json()
    uuid.UUID(body["id"])  # no id in the request: the server makes one
    assert [o["name"] for o in body["outputs"]] == ["logits"]
    assert body["outputs"][0]["data"] == pytest.approx(published.logits(batch).ravel(), abs=1e-4)


def test_the_versioned_path_serves_the_loaded_version_only(
    handler: Mangum, published: TinyModel
) -> None:
    version = published.manifest.version
    request = {"inputs": [tensor([0.0] * 3072, [1, 3, 32, 32])]}
    reply = call(handler, "POST", f"/v2/models/{MODEL}/versions/{version}/infer", request)
    assert (reply.status, reply.json()["model_version"]) == (200, version)
    reply = call(
        handler, "POST", f"/v2/models/{MODEL}/versions/20200101T000000Z-00000000/infer", request
    )
    assert reply.status == 404
    assert version in reply.json()["error"]


ONE = [0.0] * 3072


@pytest.mark.parametrize(
    ("request_body", "expect"),
    [
        (
            {"inputs": [tensor(ONE, [1, 3, 32, 32], name="pixels")]},
            "the model has no input 'pixels'",
        ),
        (
            {"inputs": [tensor(ONE, [1, 3, 32, 32])] * 2},
            "inputs[1] ('input'): input 'input' is given twice",
        ),
        (
            {"inputs": [tensor(ONE, [1, 3, 32, 32], datatype="INT64")]},
            "datatype 'INT64'; the model takes 'FP32'",
        ),
        (
            {"inputs": [tensor(ONE, [1, 3072])]},
            "shape [1, 3072] does not fit the model's [-1, 3, 32, 32]",
        ),
        ({"inputs": [tensor(ONE, [1, 3, 16, 64])]}, "does not fit"),
        (
            {"inputs": [tensor(ONE[:-1], [1, 3, 32, 32])]},
            "data has 3071 values, shape [1, 3, 32, 32] needs 3072",
        ),
        ({"inputs": [tensor([], [0, 3, 32, 32])]}, f"batch of 0; send 1..{MAX_BATCH}"),
        ({"inputs": [tensor(ONE, [MAX_BATCH + 1, 3, 32, 32])]}, f"batch of {MAX_BATCH + 1}"),
        ({"inputs": [tensor(["a"] * 3072, [1, 3, 32, 32])]}, "data must be FP32 values"),
        ({"inputs": [tensor([[0.0], [0.0, 1.0]], [1, 3, 32, 32])]}, "ragged nested list"),
        (
            {"inputs": [tensor(ONE, [1, 3, 32, 32])], "outputs": [{"name": "probs"}]},
            "no output ['probs']",
        ),
        (
            {"inputs": [{"name": "input", "shape": [1, 3, 32, 32], "datatype": "FP32"}]},
            "inputs[0] ('input'): no data; send data, or binary data",
        ),
        ({"inputs": [tensor(ONE, [1, 3, 32, -32])]}, "does not fit"),
        ({"inputs": []}, "inputs: List should have at least 1 item"),
        ({"id": 42, "inputs": [tensor(ONE, [1, 3, 32, 32])]}, "id: Input should be a valid string"),
    ],
)
def test_bad_requests_are_400_with_an_error_object(
    handler: Mangum, request_body: dict[str, Any], expect: str
) -> None:
    reply = call(handler, "POST", INFER, request_body)
    assert reply.status == 400
    assert reply.json().keys() == {"error"}
    assert expect in reply.json()["error"]


@pytest.mark.parametrize(
    "value",
    [
        math.nan,  # Python's json writes NaN as a bare literal, which Starlette's parser accepts
        math.inf,
        1e39,  # finite as float64, inf once cast to FP32
        -1e39,
    ],
)
def test_values_that_are_not_finite_in_fp32_are_refused(handler: Mangum, value: float) -> None:
    reply = call(handler, "POST", INFER, {"inputs": [tensor([value] * 3072, [1, 3, 32, 32])]})
    assert reply.status == 400
    assert reply.json()["error"] == (
        "inputs[0] ('input'): data has NaN, infinite or out-of-range values; "
        "FP32 values must be finite, within +-3.40282e+38"
    )


def test_fp32_max_itself_is_accepted(handler: Mangum) -> None:
    big = float(np.finfo(np.float32).max)
    reply = call(handler, "POST", INFER, {"inputs": [tensor([big] * 3072, [1, 3, 32, 32])]})
    assert reply.status == 200


def test_an_unknown_model_is_a_404(handler: Mangum) -> None:
    reply = call(
        handler, "POST", "/v2/models/other/infer", {"inputs": [tensor(ONE, [1, 3, 32, 32])]}
    )
    assert reply.status == 404
    assert "'other' is not served here" in reply.json()["error"]


def test_an_fp16_input_refuses_values_beyond_its_range() -> None:
    ok = from_json([1, 65504], [1, 2], "FP16", "x")
    assert ok.dtype == np.float16 and ok.tolist() == [[1.0, 65504.0]]
    with pytest.raises(BadInput, match=r"FP16 values must be finite, within \+-65504"):
        from_json([1, 70000], [1, 2], "FP16", "x")
