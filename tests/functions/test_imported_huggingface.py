"""Models imported from Hugging Face folders, served through the real Lambda handler with API
Gateway payload 2.0 events: a BERT text classifier with its WordPiece tokenizer (trained on the
real IMDB training reviews) and a ViT image classifier with a CLIP-style image processor, both
built from configs (tests/support/hf_folders.py) and imported by `import_model`.

Every answer is checked against transformers: AutoTokenizer and the torch model on the same
reviews, each alone (no padding) while the function batches and pads them; the image processor
(CLIPImageProcessorPil) and the torch ViT on the same PNGs.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from numpy.typing import NDArray

from functions.tasks.classification import softmax
from modelfn.artifact import read_manifest
from tests.functions.conftest import handler_for
from tests.functions.test_openapi import Checker, check_examples
from tests.modelfn.test_images import cifar, upscaled  # noqa: F401 - cifar: a fixture
from tests.support.hf_folders import CIFAR_LABELS, LABELS, MAX_LENGTH, imdb_texts, processor

TEXT, VISION = "imdb-bert", "cifar-vit"
REVIEWS = 24  # real IMDB test reviews sent per request, short and long (truncated) ones


@pytest.fixture(scope="module")
def text(imported_text_classifier: Path, tmp_path_factory: pytest.TempPathFactory) -> Checker:
    return Checker(handler_for(imported_text_classifier, tmp_path_factory.mktemp("serve-bert")))


@pytest.fixture(scope="module")
def reviews() -> list[str]:
    return imdb_texts("test")[10 : 10 + REVIEWS]


def transformers_probabilities(folder: Path, texts: list[str]) -> NDArray[np.float64]:
    """Each text tokenised alone by AutoTokenizer and run by the torch model: softmax rows."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    rows = []
    with torch.no_grad():
        for text in texts:
            encoded = tokenizer(text, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
            rows.append(model(**encoded).logits[0].numpy())
    return softmax(np.stack(rows))


def test_texts_are_classified_as_transformers_classifies_them(
    text: Checker, reviews: list[str], hf_bert_classifier: Path, imported_text_classifier: Path
) -> None:
    reply = text("POST", f"/models/{TEXT}/predict", {"inputs": reviews, "parameters": {"top_k": 2}})
    assert reply.status == 200, reply.body
    body = reply.json()
    assert (body["model"], body["version"]) == (TEXT, imported_text_classifier.name)
    want = transformers_probabilities(hf_bert_classifier, reviews)
    for output, row in zip(body["outputs"], want, strict=True):
        assert output["label"] == LABELS[int(row.argmax())]
        assert [t["label"] for t in output["top_k"]] == [LABELS[i] for i in np.argsort(-row)]
        assert [t["score"] for t in output["top_k"]] == pytest.approx(np.sort(row)[::-1], abs=1e-5)
    # The reviews get different answers, apart by more than the scores' tolerance (an untrained
    # BERT's probabilities differ by about 1e-4; 9.7e-5 in one CI run): not trivially equal.
    assert np.ptp(want[:, 0]) > 3e-5


def test_oip_takes_texts_as_bytes(
    text: Checker, reviews: list[str], hf_bert_classifier: Path
) -> None:
    infer = f"/v2/models/{TEXT}/infer"
    meta = text("GET", f"/v2/models/{TEXT}").json()
    assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    tensor = {"name": "text", "shape": [3], "datatype": "BYTES", "data": reviews[:3]}
    reply = text("POST", infer, {"inputs": [tensor]})
    assert reply.status == 200, reply.body
    outputs = {o["name"]: o for o in reply.json()["outputs"]}
    want = transformers_probabilities(hf_bert_classifier, reviews[:3])
    np.testing.assert_allclose(
        np.reshape(outputs["probabilities"]["data"], (3, 2)), want, atol=1e-5
    )
    assert outputs["label"]["data"] == [LABELS[int(i)] for i in want.argmax(axis=1)]


def test_bad_texts_are_400s_naming_the_input(text: Checker) -> None:
    predict = f"/models/{TEXT}/predict"
    cases = [
        ({"inputs": ["fine", "  "]}, "inputs[1]: empty text"),
        ({"inputs": ["fine", 3]}, "inputs[1]: expected a string of text, got int"),
        ({"inputs": ["x"] * 65}, "inputs: 65 texts, at most 64 per request"),
        ({"inputs": ["x" * 40_000]}, "inputs[0]: 40,000 bytes of text, over the limit"),
        ({"inputs": ["fine"], "parameters": {"top_k": 3}}, "parameters.top_k: 3 is out of range"),
    ]
    for body, message in cases:
        reply = text("POST", predict, body)
        assert reply.status == 400 and message in reply.json()["error"], reply.body


def test_the_embeddings_route_names_the_models_task(text: Checker) -> None:
    reply = text("POST", f"/models/{TEXT}/v1/embeddings", {"model": TEXT, "input": "a film"})
    assert reply.status == 404
    assert reply.json()["error"]["message"].startswith(  # OpenAI's error shape
        f"model '{TEXT}' is not a feature extractor (its task is text-classification); "
        "/v1/embeddings serves feature-extraction models only"
    )


def test_the_openapi_document_shows_the_reviews_and_real_answers(
    text: Checker, imported_text_classifier: Path
) -> None:
    doc = text.doc
    assert f"`{TEXT}` version `{imported_text_classifier.name}`" in doc["info"]["description"]
    assert check_examples(doc) >= 8
    predict = doc["paths"]["/models/{name}/predict"]["post"]
    requests = predict["requestBody"]["content"]["application/json"]["examples"]
    assert [r["value"]["inputs"] for r in requests.values()] == [
        [t.strip()] for t in imdb_texts("test")[:3]
    ]


# --- the ViT -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vision(hf_vit: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Checker, Path]:
    from tests.support.hf_folders import import_quietly

    root = tmp_path_factory.mktemp("serve-vit")
    version = import_quietly(hf_vit, root / "artifacts", name=VISION, task="image-classification")
    return Checker(handler_for(version, root)), version


def test_images_are_classified_as_the_processor_and_torch_vit_do(
    vision: tuple[Checker, Path],
    hf_vit: Path,
    cifar: NDArray[np.uint8],  # noqa: F811 - the fixture
) -> None:
    from PIL import Image
    from transformers import AutoModelForImageClassification

    checker, version = vision
    assert read_manifest(version).preprocessing.crop_rounding == "floor"  # type: ignore[union-attr]
    pngs = upscaled(cifar[:8], 64, 48)  # 46x35 after the resize: a 3-row crop margin
    reply = checker(
        "POST",
        f"/models/{VISION}/predict",
        {"inputs": [base64.b64encode(p).decode() for p in pngs], "parameters": {"top_k": 3}},
    )
    assert reply.status == 200, reply.body
    pixels = processor()(
        [Image.open(io.BytesIO(p)).convert("RGB") for p in pngs], return_tensors="pt"
    )["pixel_values"]
    model: Any = AutoModelForImageClassification.from_pretrained(str(hf_vit)).eval()
    with torch.no_grad():
        want = softmax(model(pixel_values=pixels).logits.numpy())
    for output, row in zip(reply.json()["outputs"], want, strict=True):
        ranked = np.argsort(-row, kind="stable")[:3]
        assert [t["label"] for t in output["top_k"]] == [CIFAR_LABELS[i] for i in ranked]
        assert [t["score"] for t in output["top_k"]] == pytest.approx(row[ranked], abs=1e-5)
