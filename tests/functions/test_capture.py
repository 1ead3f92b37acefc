"""Sampled capture in the function (issue 23 item 4): the record's layout, its features measured
independently here, no raw input unless asked, sampling within statistical bounds, nothing for a
refused request, and text features from the real imdb-sentiment version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mangum import Mangum

from functions.app import create_app
from functions.settings import FunctionSettings
from modelfn.artifact import read_manifest
from modelfn.capture import MAX_RAW_BYTES, CaptureRecord, records_in_lines
from modelfn.text import Tokenizer
from tests.functions.conftest import (
    MODEL,
    TinyModel,
    call,
    encode_image,
    handler_for,
    random_pixels,
)
from tests.functions.test_trace_context import GOOD, TRACE
from tests.support.text_models import SHARED_DATA

PREDICT = f"/models/{MODEL}/predict"


def capturing(settings: FunctionSettings, rate: float = 1.0, raw: bool = False) -> Mangum:
    captured = settings.model_copy(update={"capture_sample_rate": rate, "capture_raw": raw})
    return Mangum(create_app(captured), lifespan="off")


def lines_of(out: str) -> list[dict[str, Any]]:
    return [json.loads(row) for row in out.splitlines() if row.startswith("{")]


def records(out: str) -> list[CaptureRecord]:
    return records_in_lines(lines_of(out))


def test_a_captured_request_records_features_and_answers_never_the_image(
    published: TinyModel,
    settings: FunctionSettings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = capturing(settings)
    pixels = random_pixels(2, seed=5)
    pixels[1] //= 4  # a darker second image
    images = [encode_image(p) for p in pixels]
    capsys.readouterr()
    reply = call(handler, "POST", PREDICT, {"inputs": images}, headers={"traceparent": GOOD})
    assert reply.status == 200
    out = capsys.readouterr().out
    [record] = records(out)
    [request] = [line for line in lines_of(out) if line["message"] == "request"]
    assert (record.model, record.version, record.route) == (
        MODEL,
        published.manifest.version,
        "POST /models/{name}/predict",
    )
    assert record.trace_id == TRACE and record.request_id == request["request_id"]
    assert record.status == 200 and record.latency_ms == pytest.approx(request["duration_ms"])
    # The answers as the client got them: the best label and its score.
    answered = reply.json()["outputs"]
    assert record.outputs == [{"label": o["label"], "score": o["score"]} for o in answered]
    # The features, computed here from the pixels without the function's code.
    as_float = pixels.astype(np.float64)
    for features, image in zip(record.features, as_float, strict=True):
        assert (features["width"], features["height"]) == (32, 32)
        assert features["mean_g"] == pytest.approx(image[..., 1].mean(), abs=1e-3)
        assert features["std_b"] == pytest.approx(image[..., 2].std(), abs=1e-3)
        luma = (image @ np.array([0.299, 0.587, 0.114])).mean()
        assert features["brightness"] == pytest.approx(luma, abs=1e-3)
    assert record.features[1]["brightness"] < record.features[0]["brightness"] / 2
    # No pixel and no image string anywhere in what the function wrote.
    assert record.raw is None and "raw" not in lines_of(out)[-1]
    assert all(image[:64] not in out for image in images)


def test_raw_capture_keeps_the_inputs_as_sent_unless_too_big(
    published: TinyModel,
    settings: FunctionSettings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = capturing(settings, raw=True)
    small = [random_pixels(1, seed=6)[0].tolist()]
    capsys.readouterr()
    assert call(handler, "POST", PREDICT, {"inputs": small}).status == 200
    [record] = records(capsys.readouterr().out)
    assert record.raw == small and record.raw_omitted is None
    # A batch whose JSON is over what one CloudWatch Logs event holds: features, no raw.
    big = [encode_image(p) for p in random_pixels(8, seed=7, size=128)]
    assert len(json.dumps(big)) > MAX_RAW_BYTES
    assert call(handler, "POST", PREDICT, {"inputs": big}).status == 200
    [record] = records(capsys.readouterr().out)
    assert record.raw is None and "over the" in (record.raw_omitted or "")
    assert [f["width"] for f in record.features] == [128] * 8


def test_refused_requests_and_other_routes_are_not_captured(
    published: TinyModel,
    settings: FunctionSettings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = capturing(settings)
    capsys.readouterr()
    assert call(handler, "POST", PREDICT, {"inputs": []}).status == 400
    assert call(handler, "GET", f"/v2/models/{MODEL}").status == 200
    assert records(capsys.readouterr().out) == []


def test_without_capture_nothing_is_recorded(
    handler: Mangum, published: TinyModel, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    image = encode_image(random_pixels(1, seed=8)[0])
    for _ in range(5):
        assert call(handler, "POST", PREDICT, {"inputs": [image]}).status == 200
    assert records(capsys.readouterr().out) == []


def test_the_sample_rate_is_the_share_of_requests_recorded(
    published: TinyModel,
    settings: FunctionSettings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = capturing(settings, rate=0.2)
    image = [random_pixels(1, seed=9)[0].tolist()]
    capsys.readouterr()
    for _ in range(400):
        assert call(handler, "POST", PREDICT, {"inputs": image}).status == 200
    # Binomial(400, 0.2): mean 80, sd 8; 44..116 is 4.5 sd either side (a false failure in about
    # one run in 150,000).
    assert 44 <= len(records(capsys.readouterr().out)) <= 116


@pytest.mark.skipif(
    not (SHARED_DATA / "imdb").is_dir(), reason=f"IMDB data not found under {SHARED_DATA}"
)
def test_text_features_are_lengths_and_unknown_words(
    imdb_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = handler_for(imdb_artifact, tmp_path, capture_sample_rate=1.0)
    texts = ["A wonderful film, I loved it.", "zzqx blorft wibble film"]
    capsys.readouterr()
    reply = call(handler, "POST", "/models/imdb-sentiment/predict", {"inputs": texts})
    assert reply.status == 200
    out = capsys.readouterr().out
    [record] = records(out)
    manifest = read_manifest(imdb_artifact)
    vocabulary = json.loads((imdb_artifact / "vocab.json").read_text(encoding="utf-8"))
    tokenizer = Tokenizer.build(manifest.preprocessing, vocabulary)  # type: ignore[arg-type]
    for text, features in zip(texts, record.features, strict=True):
        words = tokenizer.words(text)
        unknown = sum(1 for w in words if w not in tokenizer.ids)
        assert features == {
            "chars": len(text),
            "tokens": len(words),
            "oov_rate": pytest.approx(unknown / len(words), abs=1e-6),
        }
    assert record.features[1]["oov_rate"] >= 0.75  # three made-up words of four
    assert record.outputs == [
        {"label": o["label"], "score": o["score"]} for o in reply.json()["outputs"]
    ]
    assert all(text not in out for text in texts)
