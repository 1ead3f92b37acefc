"""A ResNet-18 brought in as `tests.support.resnet:resnet18` with its weights, as a user would:
a verified artifact whose graph answers as the torch module does on real CIFAR-10 test images."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image
from safetensors.torch import load_model

from importing import import_model
from modelfn.artifact import (
    EXAMPLES_FILE,
    ONNX_FILE,
    WEIGHTS_FILE,
    ImagePreprocessing,
    Manifest,
    parse_examples,
    sha256_file,
    verify_artifact,
)
from tests.support.import_sources import CIFAR_IMAGE, RESNET, trained_resnet
from tests.support.resnet import resnet18


@pytest.fixture(scope="module")
def imported(
    tmp_path_factory: pytest.TempPathFactory,
    resnet_weights: dict[str, Path],
    cifar_test_images: tuple[list[Path], list[str]],
) -> Path:
    paths, labels = cifar_test_images
    return import_model(
        RESNET,
        name="cifar-resnet18",
        task="image-classification",
        out_dir=tmp_path_factory.mktemp("artifacts"),
        weights=resnet_weights["safetensors"],
        factory_args={"num_classes": 10},
        labels=labels,
        image=CIFAR_IMAGE,
        examples=paths,
    )


def cifar_batch(paths: list[Path]) -> np.ndarray:
    """The images as the scheme says, computed here independently: /255, CIFAR mean/std, NCHW."""
    pixels = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    x = (pixels / 255.0 - np.array(CIFAR_IMAGE.mean)) / np.array(CIFAR_IMAGE.std)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)


def test_the_artifact_verifies_and_records_where_it_came_from(
    imported: Path, resnet_weights: dict[str, Path], cifar_test_images: tuple[list[Path], list[str]]
) -> None:
    paths, labels = cifar_test_images
    manifest = verify_artifact(imported)
    assert set(manifest.files) == {ONNX_FILE, WEIGHTS_FILE, EXAMPLES_FILE}
    assert manifest.task == "image-classification" and manifest.labels == labels
    assert manifest.architecture is None and manifest.training is None and manifest.data is None
    assert {"torch", "safetensors", "onnxruntime"} <= set(manifest.frameworks)
    assert [(t.name, t.datatype, t.shape) for t in manifest.inputs] == [
        ("input", "FP32", [-1, 3, 32, 32])
    ]
    assert [(t.name, t.shape) for t in manifest.outputs] == [("logits", [-1, 10])]
    assert manifest.preprocessing == ImagePreprocessing(
        height=32, width=32, mean=CIFAR_IMAGE.mean, std=CIFAR_IMAGE.std
    )
    record = manifest.imported
    assert record is not None
    assert (record.source, record.reference) == ("torch-module", RESNET)
    assert record.source_sha256["resnet18.safetensors"] == sha256_file(
        resnet_weights["safetensors"]
    )
    assert "resnet.py" in record.source_sha256  # the factory's code, for provenance
    assert record.parity_inputs == "examples" and record.tolerance == 1e-4
    assert 0 <= record.parity["logits"] <= 1e-4
    assert record.example_sha256 == [sha256_file(p) for p in paths]
    assert record.options["factory_args"] == {"num_classes": 10}
    assert record.options["exporter"] == "dynamo"


def test_the_graph_answers_as_the_module_rebuilt_from_the_artifacts_weights(
    imported: Path, cifar_test_images: tuple[list[Path], list[str]]
) -> None:
    manifest = Manifest.model_validate_json((imported / "manifest.json").read_bytes())
    model = resnet18(num_classes=10)
    load_model(model, str(imported / WEIGHTS_FILE))  # safetensors, strict
    model.eval()
    batch = cifar_batch(cifar_test_images[0])
    with torch.no_grad():
        expected = model(torch.from_numpy(batch)).numpy()
        given = trained_resnet()(torch.from_numpy(batch)).numpy()
    np.testing.assert_array_equal(expected, given)  # the weights saved are the weights given
    session = ort.InferenceSession(str(imported / ONNX_FILE), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {manifest.inputs[0].name: batch})  # a batch of 4
    assert np.max(np.abs(logits - expected)) < 1e-4


def test_examples_json_holds_the_users_images_as_pngs(
    imported: Path, cifar_test_images: tuple[list[Path], list[str]]
) -> None:
    examples = parse_examples((imported / EXAMPLES_FILE).read_bytes())
    assert examples.dataset == "user examples" and len(examples.examples) == 4
    for example, path in zip(examples.examples, cifar_test_images[0], strict=True):
        decoded = Image.open(io.BytesIO(base64.b64decode(example.input)))
        assert decoded.format == "PNG"
        np.testing.assert_array_equal(np.asarray(decoded), np.asarray(Image.open(path)))


def test_a_pt_state_dict_brings_the_same_weights_checked_on_generated_inputs(
    tmp_path: Path, imported: Path, resnet_weights: dict[str, Path]
) -> None:
    folder = import_model(
        RESNET,
        name="cifar-resnet18",
        task="image-classification",
        out_dir=tmp_path,
        weights=resnet_weights["pt"],
        factory_args={"num_classes": 10},
        labels=[f"class-{i}" for i in range(10)],
        image=CIFAR_IMAGE,
    )
    manifest = verify_artifact(folder)
    assert EXAMPLES_FILE not in manifest.files
    assert manifest.imported is not None and manifest.imported.parity_inputs == "generated"
    assert manifest.imported.example_sha256 == []
    # safetensors written from the same weights: the same bytes, so the same version suffix
    assert manifest.files[WEIGHTS_FILE] == verify_artifact(imported).files[WEIGHTS_FILE]
    assert manifest.version[-8:] == imported.name[-8:]
