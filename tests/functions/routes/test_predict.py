"""POST /models/{name}/predict through the Lambda handler, against numpy's answer."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import numpy as np
import pytest
from mangum import Mangum
from PIL import Image

from functions.limits import MAX_BATCH, MAX_PIXELS, MAX_TOTAL_PIXELS
from tests.functions.conftest import (
    MODEL,
    TinyModel,
    call,
    encode_image,
    invoke,
    random_pixels,
)
from tools.local.events import http_api_event

PREDICT = f"/models/{MODEL}/predict"


def expected(tiny: TinyModel, pixels: np.ndarray, top_k: int) -> list[dict[str, Any]]:
    labels = tiny.manifest.labels
    answers = []
    for row in tiny.probabilities(pixels):
        best = np.argsort(-row)[:top_k]
        answers.append([(labels[i], float(row[i])) for i in best])
    return answers


def assert_matches(outputs: list[dict[str, Any]], answers: list[list[tuple[str, float]]]) -> None:
    assert len(outputs) == len(answers)
    for output, answer in zip(outputs, answers, strict=True):
        assert [t["label"] for t in output["top_k"]] == [label for label, _ in answer]
        assert [t["score"] for t in output["top_k"]] == pytest.approx(
            [s for _, s in answer], abs=1e-5
        )
        assert (output["label"], output["score"]) == (
            output["top_k"][0]["label"],
            output["top_k"][0]["score"],
        )


def test_base64_png_and_pixel_arrays_match_numpy(handler: Mangum, published: TinyModel) -> None:
    pixels = random_pixels(3)
    body = {"inputs": [encode_image(pixels[0]), pixels[1].tolist(), encode_image(pixels[2])]}
    reply = call(handler, "POST", PREDICT, body)
    assert reply.status == 200
    result = reply.json()
    assert result["model"] == MODEL
    assert result["version"] == published.manifest.version
    assert_matches(result["outputs"], expected(published, pixels, top_k=3))


def test_top_k_returns_that_many_labels_in_score_order(
    handler: Mangum, published: TinyModel
) -> None:
    pixels = random_pixels(1, seed=7)
    reply = call(
        handler, "POST", PREDICT, {"inputs": [pixels[0].tolist()], "parameters": {"top_k": 10}}
    )
    assert reply.status == 200
    (output,) = reply.json()["outputs"]
    assert sorted(t["label"] for t in output["top_k"]) == sorted(published.manifest.labels)
    assert sum(t["score"] for t in output["top_k"]) == pytest.approx(1.0)
    assert_matches([output], expected(published, pixels, top_k=10))


def decoded(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"))


def test_data_urls_jpeg_rgba_and_grayscale_are_accepted(
    handler: Mangum, published: TinyModel
) -> None:
    pixels = random_pixels(1)[0]
    jpeg, gray = encode_image(pixels, fmt="JPEG"), encode_image(pixels, mode="L")
    inputs = [
        "data:image/png;base64," + encode_image(pixels),
        jpeg,
        encode_image(pixels, mode="RGBA"),
        gray,
    ]
    reply = call(handler, "POST", PREDICT, {"inputs": inputs})
    assert reply.status == 200
    # What each input decodes to as RGB: the pixels themselves (PNG, opaque RGBA), the lossy
    # JPEG's pixels, and the grey level repeated in all three channels.
    as_rgb = np.stack([pixels, decoded(jpeg), pixels, decoded(gray)])
    assert_matches(reply.json()["outputs"], expected(published, as_rgb, top_k=3))


def test_larger_images_are_resized_to_the_graph_size(handler: Mangum, published: TinyModel) -> None:
    small = random_pixels(1)[0]
    big = np.asarray(Image.fromarray(small).resize((64, 48), Image.Resampling.NEAREST))
    reply = call(handler, "POST", PREDICT, {"inputs": [encode_image(big), big.tolist()]})
    assert reply.status == 200
    image_answer, array_answer = reply.json()["outputs"]
    assert image_answer["top_k"] == array_answer["top_k"]  # both paths resize the same way


def png_of_size(width: int, height: int) -> str:
    buffer = io.BytesIO()
    Image.new("1", (width, height)).save(buffer, format="PNG")  # 1-bit zeros compress to a few KB
    return base64.b64encode(buffer.getvalue()).decode()


def not_an_image() -> str:
    return base64.b64encode(b"GIF89a but not really an image at all").decode()


def truncated_png() -> str:
    return encode_image(random_pixels(1)[0])[:200]


@pytest.mark.parametrize(
    ("body", "status", "expect"),
    [
        ({"inputs": ["not base64!"]}, 400, "inputs[0]: not valid base64"),
        ({"inputs": [not_an_image()]}, 400, "inputs[0]: not a PNG or JPEG image"),
        ({"inputs": [random_pixels(1)[0].tolist(), truncated_png()]}, 400, "inputs[1]: "),
        ({"inputs": ["data:image/png," + "abc"]}, 400, "inputs[0]: a data URL must be base64"),
        ({"inputs": [[[1, 2, 3]]]}, 400, "inputs[0]: expected an HxWx3 array"),
        ({"inputs": [np.zeros((32, 32, 4)).tolist()]}, 400, "got shape [32, 32, 4]"),
        ({"inputs": [[[[1, 2, 3]], [[1, 2]]]]}, 400, "inputs[0]: ragged array"),
        ({"inputs": [np.full((2, 2, 3), 256).tolist()]}, 400, "must be in 0..255, got 256..256"),
        ({"inputs": [np.full((2, 2, 3), -1).tolist()]}, 400, "must be in 0..255"),
        ({"inputs": [[[["1", "2", "3"]]]]}, 400, "array values must be numbers"),
        ({"inputs": [7]}, 400, "inputs[0]: expected a base64 PNG/JPEG string or an HxWx3 array"),
        ({"inputs": [{"b64": "x"}]}, 400, "got dict"),
        ({"inputs": [png_of_size(4097, 4096)]}, 400, f"over the limit of {MAX_PIXELS}"),
        (
            {"inputs": [png_of_size(4096, 4096)] * 3},
            400,
            f"decode to {3 * 4096 * 4096} pixels in all, over the limit of {MAX_TOTAL_PIXELS}",
        ),
        ({"inputs": [[[[0, 0, 0]]]] * (MAX_BATCH + 1)}, 400, f"at most {MAX_BATCH} per request"),
        ({"inputs": []}, 400, "inputs: List should have at least 1 item"),
        ({}, 400, "inputs: Field required"),
        ({"inputs": [[[[0, 0, 0]]]], "extra": 1}, 400, "extra: Extra inputs are not permitted"),
        (
            {"inputs": [[[[0, 0, 0]]]], "parameters": {"top_k": 0}},
            400,
            "top_k: 0 is out of range; use 1..10",
        ),
        ({"inputs": [[[[0, 0, 0]]]], "parameters": {"top_k": 11}}, 400, "use 1..10"),
        (
            {"inputs": [[[[0, 0, 0]]]], "parameters": {"top_k": "many"}},
            400,
            "parameters.top_k: Input should be a valid integer",
        ),
        # Strict: neither a bool nor a numeric string is read as a count.
        (
            {"inputs": [[[[0, 0, 0]]]], "parameters": {"top_k": True}},
            400,
            "parameters.top_k: Input should be a valid integer",
        ),
        (
            {"inputs": [[[[0, 0, 0]]]], "parameters": {"top_k": "3"}},
            400,
            "parameters.top_k: Input should be a valid integer",
        ),
        (
            {"inputs": [[[[0, 0, 0]]]], "parameters": {"temperature": 2}},
            400,
            "parameters.temperature: Extra inputs are not permitted",
        ),
        ({"inputs": "abc"}, 400, "inputs: Input should be a valid list"),
    ],
)
def test_bad_requests_are_4xx_naming_the_problem(
    handler: Mangum, body: dict[str, Any], status: int, expect: str
) -> None:
    reply = call(handler, "POST", PREDICT, body)
    assert reply.status == status
    assert reply.headers["content-type"] == "application/json"
    assert expect in reply.json()["error"]
    assert "Traceback" not in reply.body.decode()


def test_a_body_that_is_not_json_is_a_400(handler: Mangum) -> None:
    reply = call(handler, "POST", PREDICT, raw=b'{"inputs": [')
    assert reply.status == 400
    assert "request body is not valid JSON" in reply.json()["error"]
    reply = call(handler, "POST", PREDICT)
    assert (reply.status, reply.json()) == (
        400,
        {"error": "request body is missing; send a JSON object"},
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "text/plain"},
        {"content-type": "application/x-www-form-urlencoded"},  # what `curl -d` sends
        {},  # what tritonclient sends
        {"content-type": "application/octet-stream"},
    ],
)
def test_a_json_body_is_read_as_json_whatever_its_content_type(
    handler: Mangum, published: TinyModel, headers: dict[str, str]
) -> None:
    pixels = random_pixels(1)
    body = json.dumps({"inputs": [pixels[0].tolist()]}).encode()
    reply = invoke(handler, http_api_event("POST", PREDICT, headers=headers, body=body))
    assert reply.status == 200, reply.body
    want = published.probabilities(pixels)[0]
    assert reply.json()["outputs"][0]["score"] == pytest.approx(want.max(), abs=1e-5)
    bad = invoke(handler, http_api_event("POST", PREDICT, headers=headers, body=b"inputs=1"))
    assert bad.status == 400
    assert "request body is not valid JSON" in bad.json()["error"]


def test_a_compressed_body_is_refused_by_name(handler: Mangum) -> None:
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    reply = invoke(handler, http_api_event("POST", PREDICT, headers=headers, body=b"\x1f\x8b"))
    assert reply.status == 415
    assert "Content-Encoding 'gzip' is not supported" in reply.json()["error"]


def test_a_json_array_body_is_refused_naming_the_object_it_needs(handler: Mangum) -> None:
    reply = call(handler, "POST", PREDICT, [[[[0, 0, 0]]]])
    assert reply.status == 400
    assert "request body is not a JSON object" in reply.json()["error"]


def test_an_unknown_model_is_a_404(handler: Mangum) -> None:
    reply = call(handler, "POST", "/models/resnet50/predict", {"inputs": [[[[0, 0, 0]]]]})
    assert reply.status == 404
    assert reply.json() == {
        "error": f"model 'resnet50' is not served here; this function serves '{MODEL}'"
    }
