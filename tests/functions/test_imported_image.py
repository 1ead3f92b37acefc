"""An imported image classifier through the real Lambda handler (payload 2.0 events).

The artifact is what `modelfn import` writes for a vision model trained elsewhere: an ONNX graph
(a linear classifier made with onnx.helper, tests/support/imported.py), a manifest with an
ImportRecord and no architecture, training record or data fingerprint, no metrics, and a scheme
with a resize of the shorter side, a centre crop and bicubic resampling. Real CIFAR-10 test
images, upscaled to 64x48 so resize and crop both act, are sent as base64 PNGs; every answer is
checked against the graph's numpy twin fed the torchvision reference tensor
(tests/modelfn/test_images.py).
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from functions.tasks.classification import softmax
from modelfn.artifact import Example, Examples, ImagePreprocessing, read_manifest
from tests.functions.conftest import call, handler_for
from tests.functions.test_openapi import Checker, check_examples
from tests.modelfn.test_images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    torchvision_reference,
    upscaled,
)
from tests.support.imported import ImageGraph, write_image_classifier
from tests.support.manifests import CIFAR10_LABELS
from tests.support.oip import binary_infer

CIFAR = Path(__file__).resolve().parents[3] / "shared/data/cifar-10-batches-py"
NAME = "imported-vision"
PREDICT, INFER = f"/models/{NAME}/predict", f"/v2/models/{NAME}/infer"
SPEC = ImagePreprocessing(
    height=24,
    width=24,
    resize=28,
    interpolation="bicubic",
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
)


@pytest.fixture(scope="module")
def pngs() -> list[bytes]:
    """Eight real CIFAR-10 test images as 64x48 PNGs."""
    if not (CIFAR / "test_batch").is_file():
        pytest.skip(f"CIFAR-10 test batch not found in {CIFAR}")
    from training.data.cifar10 import load_cifar10

    return upscaled(load_cifar10(CIFAR).test.images[:8].transpose(0, 2, 3, 1), 64, 48)


def b64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


def reference(pngs: list[bytes]) -> NDArray[np.float32]:
    """The tensor torchvision's Resize(28) + CenterCrop(24) + ToTensor + Normalize makes."""
    return np.stack(
        [
            torchvision_reference(
                png,
                resize=28,
                crop=(24, 24),
                interpolation="bicubic",
                mean=IMAGENET_MEAN,
                std=IMAGENET_STD,
            )
            for png in pngs
        ]
    )


@pytest.fixture(scope="module")
def imported(
    pngs: list[bytes], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Checker, Path, ImageGraph]:
    """The function serving the imported classifier (playground on), with its artifact."""
    root = tmp_path_factory.mktemp("imported-vision")
    examples = Examples(
        dataset="user examples",
        examples=[
            Example(input=b64(png), split="examples", index=i) for i, png in enumerate(pngs[:2])
        ],
    )
    folder, graph = write_image_classifier(root / "build", SPEC, CIFAR10_LABELS, examples=examples)
    handler = handler_for(folder, root, playground=True)
    return Checker(handler), folder, graph


def test_pngs_are_resized_cropped_and_classified_as_torchvision_feeds_the_graph(
    imported: tuple[Checker, Path, ImageGraph], pngs: list[bytes]
) -> None:
    checker, folder, graph = imported
    reply = checker("POST", PREDICT, {"inputs": [b64(p) for p in pngs], "parameters": {"top_k": 3}})
    assert reply.status == 200, reply.body
    body = reply.json()
    assert (body["model"], body["version"]) == (NAME, folder.name)
    want = softmax(graph.logits(reference(pngs)))
    for output, row in zip(body["outputs"], want, strict=True):
        ranked = np.argsort(-row, kind="stable")[:3]
        assert [t["label"] for t in output["top_k"]] == [CIFAR10_LABELS[i] for i in ranked]
        assert [t["score"] for t in output["top_k"]] == pytest.approx(row[ranked], abs=1e-5)
    # The model answers differently for different images: the comparison is not trivially true.
    assert len({o["label"] for o in body["outputs"]}) > 1 or np.ptp(want[:, 0]) > 1e-3


def test_oip_json_and_binary_take_the_graphs_own_tensor(
    imported: tuple[Checker, Path, ImageGraph], pngs: list[bytes]
) -> None:
    checker, _, graph = imported
    batch = reference(pngs[:3])
    want = graph.logits(batch)
    tensor = {"name": "pixel_values", "shape": list(batch.shape), "datatype": "FP32"}
    reply = checker("POST", INFER, {"inputs": [{**tensor, "data": batch.ravel().tolist()}]})
    assert reply.status == 200, reply.body
    (scores,) = reply.json()["outputs"]
    assert (scores["name"], scores["shape"]) == ("scores", [3, 10])
    np.testing.assert_allclose(np.reshape(scores["data"], (3, 10)), want, atol=1e-4)
    status, meta, outputs = binary_infer(checker.handler, INFER, {"pixel_values": batch})
    assert status == 200 and [o["name"] for o in meta["outputs"]] == ["scores"]
    np.testing.assert_allclose(outputs["scores"], want, atol=1e-4)


def test_metadata_lists_the_graphs_tensors(imported: tuple[Checker, Path, ImageGraph]) -> None:
    checker, _, _ = imported
    meta = checker("GET", f"/v2/models/{NAME}").json()
    assert meta["inputs"] == [
        {"name": "pixel_values", "datatype": "FP32", "shape": [-1, 3, 24, 24]}
    ]
    assert meta["outputs"] == [{"name": "scores", "datatype": "FP32", "shape": [-1, 10]}]


def test_bad_images_are_400s_naming_the_input(imported: tuple[Checker, Path, ImageGraph]) -> None:
    checker, _, _ = imported
    reply = checker("POST", PREDICT, {"inputs": ["aGVsbG8=", "%%%"]})
    assert reply.status == 400 and "inputs[0]: not a PNG or JPEG image" in reply.json()["error"]
    reply = checker("POST", PREDICT, {"inputs": [[[1, 2]]]})
    assert reply.status == 400 and "inputs[0]: expected an HxWx3 array" in reply.json()["error"]


def test_the_card_says_imported_with_no_training_data_or_metrics(
    imported: tuple[Checker, Path, ImageGraph],
) -> None:
    checker, folder, _ = imported
    manifest = read_manifest(folder)
    reply = call(checker.handler, "GET", f"/models/{NAME}/card.json")
    assert reply.status == 200, reply.body
    card = reply.json()
    assert (card["task"], card["version"]) == ("image-classification", folder.name)
    assert card["architecture"] is None and card["training"] is None and card["data"] is None
    assert card["imported"] == manifest.imported.model_dump(mode="json")  # type: ignore[union-attr]
    assert card["metrics"] == {} and card["headline"] is None and card["per_class"] == []
    assert card["inputs"] == [
        {"name": "pixel_values", "datatype": "FP32", "shape": [-1, 3, 24, 24]}
    ]
    assert [e["summary"] for e in card["examples"]] == [
        "user examples examples image 0",
        "user examples examples image 1",
    ]
    assert card["limits"] == {"top_k": 10, "max_tokens": None}
    page = call(checker.handler, "GET", f"/models/{NAME}/page")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")


def test_the_openapi_document_shows_its_own_examples_and_real_answers(
    imported: tuple[Checker, Path, ImageGraph], pngs: list[bytes]
) -> None:
    checker, folder, _ = imported
    doc = checker.doc
    assert f"`{NAME}` version `{folder.name}` (image-classification)" in doc["info"]["description"]
    assert check_examples(doc) >= 10
    predict = doc["paths"]["/models/{name}/predict"]["post"]
    requests = predict["requestBody"]["content"]["application/json"]["examples"]
    answers = predict["responses"]["200"]["content"]["application/json"]["examples"]
    assert [r["value"]["inputs"] for r in requests.values()] == [[b64(p)] for p in pngs[:2]]
    for key, example in requests.items():
        assert (
            call(checker.handler, "POST", PREDICT, example["value"]).json() == answers[key]["value"]
        )
    infer = doc["paths"]["/v2/models/{name}/infer"]["post"]
    (example,) = infer["requestBody"]["content"]["application/json"]["examples"].values()
    (tensor,) = example["value"]["inputs"]
    assert (tensor["name"], tensor["shape"]) == ("pixel_values", [1, 3, 24, 24])
    # The documented tensor is the scheme's, to the 4 decimals the document shows.
    np.testing.assert_allclose(
        np.reshape(tensor["data"], (1, 3, 24, 24)), reference(pngs[:1]), atol=6e-5
    )
