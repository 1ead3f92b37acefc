"""End to end: one smoke epoch on the real sample -> a verified, servable, rebuildable artifact."""

from __future__ import annotations

import base64
import io
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from architectures import load_torch_model
from modelfn.artifact import (
    EXAMPLES_FILE,
    ONNX_FILE,
    WEIGHTS_FILE,
    IntegrityError,
    is_version,
    parse_examples,
    read_manifest,
    verify_artifact,
)
from modelfn.registry import REPO_ROOT
from training import pipeline
from training.data.cifar10 import load_cifar10
from training.errors import TrainingError
from training.pipeline import train_model


@pytest.fixture(scope="module")
def trained(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("artifacts")
    lines: list[str] = []
    folder = train_model(
        "cifar10-cnn",
        data_dir=shared_data,
        preset="smoke",
        epochs=1,
        out_dir=out,
        seed=0,
        log=lines.append,
    )
    return folder, lines


def _serving_inputs(images_nchw_uint8: np.ndarray, manifest) -> np.ndarray:
    """Replays manifest.preprocessing the way serving will, independently of the training code."""
    pre = manifest.preprocessing
    x = images_nchw_uint8.astype(np.float32) / 255.0
    mean = np.asarray(pre.mean, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(pre.std, np.float32).reshape(1, 3, 1, 1)
    return ((x - mean) / std).astype(np.float32)


def test_artifact_folder_and_manifest(trained, cifar_dir):
    folder, lines = trained
    manifest = verify_artifact(folder)
    assert folder.name == manifest.version and is_version(manifest.version)
    assert folder.parent.name == "cifar10-cnn"
    assert sorted(p.name for p in folder.iterdir()) == [
        "confusion_matrix.png",
        "examples.json",
        "learning_curves.png",
        "manifest.json",
        "mistakes.png",
        "model.onnx",
        "model.safetensors",
        "report.json",
        "report.md",
    ]
    assert set(manifest.files) == {p.name for p in folder.iterdir()} - {"manifest.json"}
    assert manifest.version.endswith(manifest.files[WEIGHTS_FILE].sha256[:8])
    assert manifest.labels[0] == "airplane" and len(manifest.labels) == 10
    assert manifest.inputs[0].name == "input" and manifest.inputs[0].shape == [-1, 3, 32, 32]
    assert manifest.outputs[0].name == "logits" and manifest.outputs[0].shape == [-1, 10]
    assert manifest.architecture.module == "cifar10_cnn"
    assert manifest.training.preset == "smoke" and manifest.training.epochs == 1
    assert manifest.training.hyperparameters["optimizer"] in ("sgd-nesterov", "adamw")
    assert manifest.data.examples == {"train": 800, "test": 200}
    for key in (
        "accuracy",
        "macro_precision",
        "macro_recall",
        "macro_f1",
        "test_loss",
        "onnx_max_abs_diff",
    ):
        assert key in manifest.metrics
    assert 0.0 <= manifest.metrics["accuracy"] <= 1.0
    assert manifest.metrics["onnx_max_abs_diff"] <= 1e-4
    assert {"torch", "onnxruntime", "onnx", "python"} <= set(manifest.frameworks)
    assert any(line.startswith("epoch   1/1") for line in lines)
    assert any("test accuracy" in line for line in lines)


def test_examples_are_real_test_images_of_different_classes(trained, cifar_dir):
    from PIL import Image

    folder, _ = trained
    shipped = parse_examples((folder / EXAMPLES_FILE).read_bytes())
    test = load_cifar10(cifar_dir).test
    assert shipped.dataset == "cifar10" and len(shipped.examples) == 4
    assert len({e.label for e in shipped.examples}) == 4
    for example in shipped.examples:
        assert example.split == "test"
        assert example.label == read_manifest(folder).labels[test.labels[example.index]]
        png = Image.open(io.BytesIO(base64.b64decode(example.input)), formats=["PNG"])
        # Lossless: the PNG holds exactly the test image's pixels (CHW on disk, HWC in the PNG).
        np.testing.assert_array_equal(
            np.asarray(png), test.images[example.index].transpose(1, 2, 0)
        )


def test_onnx_graph_has_dynamic_batch_and_matches_torch(trained, cifar_dir):
    folder, _ = trained
    manifest = read_manifest(folder)
    graph = onnx.load(str(folder / ONNX_FILE)).graph
    assert [i.name for i in graph.input] == ["input"] and [o.name for o in graph.output] == [
        "logits"
    ]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic, not a fixed size
    assert not graph.input[0].type.tensor_type.shape.dim[0].dim_value

    test = load_cifar10(cifar_dir).test
    session = ort.InferenceSession(str(folder / ONNX_FILE), providers=["CPUExecutionProvider"])
    model = load_torch_model(folder)
    for n in (1, 7, 64):  # the export example had batch 2
        x = _serving_inputs(test.images[:n], manifest)
        (onnx_logits,) = session.run(["logits"], {"input": x})
        with torch.no_grad():
            torch_logits = model(torch.from_numpy(x)).numpy()
        assert onnx_logits.shape == (n, 10)
        np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-4, rtol=0)


def test_rebuilt_model_reproduces_the_recorded_metrics(trained, cifar_dir):
    folder, _ = trained
    manifest = read_manifest(folder)
    model = load_torch_model(folder)
    assert not model.training
    test = load_cifar10(cifar_dir).test
    with torch.no_grad():
        logits = model(torch.from_numpy(_serving_inputs(test.images, manifest)))
    labels = torch.from_numpy(test.labels)
    correct = int((logits.argmax(1) == labels).sum())
    loss = torch.nn.functional.cross_entropy(logits, labels).item()
    assert correct == round(manifest.metrics["accuracy"] * len(labels))
    assert loss == pytest.approx(manifest.metrics["test_loss"], abs=1e-5)


def test_tampered_weights_are_refused(trained, tmp_path):
    folder, _ = trained
    copy = shutil.copytree(folder, tmp_path / folder.name)
    weights = bytearray((copy / WEIGHTS_FILE).read_bytes())
    weights[-1] ^= 0x01  # same size, one bit flipped in the last weight
    (copy / WEIGHTS_FILE).write_bytes(bytes(weights))
    with pytest.raises(IntegrityError, match="model.safetensors"):
        verify_artifact(copy)
    with pytest.raises(IntegrityError):
        load_torch_model(copy)
    verify_artifact(folder)  # the original is untouched


def test_unknown_preset_fails_before_training(shared_data, tmp_path):
    with pytest.raises(ValueError, match=r"no preset \[turbo\]"):
        train_model(
            "cifar10-cnn",
            data_dir=shared_data,
            preset="turbo",
            out_dir=tmp_path,
            log=lambda _: None,
        )
    with pytest.raises(KeyError, match="unknown model 'resnet'"):
        train_model("resnet", data_dir=shared_data, out_dir=tmp_path, log=lambda _: None)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("registry_edit", "config_edit", "message"),
    [
        (
            ('architecture = "cifar10_cnn"', 'architecture = "resnet50"'),
            None,
            r"\[models\.cifar10-cnn\] names architecture 'resnet50'.*use one of: cifar10_cnn",
        ),
        (('dataset = "cifar10"', 'dataset = "cifar100"'), None, r"dataset 'cifar100'"),
        (
            None,
            ("width = 16 ", "num_classes = 7\nwidth = 16 "),
            r"num_classes = 7, but the data gives 10",
        ),
        (None, ("batch_size = 64 ", "batch_size = 5000 "), r"batch_size 5000 .* 800 training"),
    ],
    ids=["architecture", "dataset", "num_classes", "batch_size"],
)
def test_user_errors_are_training_errors(
    shared_data, tmp_path, monkeypatch, registry_edit, config_edit, message
):
    """What the CLI reports as a one-line error (it catches TrainingError) and nothing is written."""
    config = tmp_path / "cifar10-cnn.toml"
    config_text = (REPO_ROOT / "training/configs/cifar10-cnn.toml").read_text()
    if config_edit:
        assert config_edit[0] in config_text
        config_text = config_text.replace(*config_edit, 1)  # the first table: [smoke]
    config.write_text(config_text)
    registry_text = (REPO_ROOT / "models.toml").read_text()
    registry_text = registry_text.replace("training/configs/cifar10-cnn.toml", str(config))
    if registry_edit:
        assert registry_edit[0] in registry_text
        registry_text = registry_text.replace(*registry_edit)
    (tmp_path / "models.toml").write_text(registry_text)
    monkeypatch.setenv("MODELFN_REGISTRY", str(tmp_path / "models.toml"))

    out = tmp_path / "out"
    with pytest.raises(TrainingError, match=message):
        train_model(
            "cifar10-cnn", data_dir=shared_data, preset="smoke", out_dir=out, log=lambda _: None
        )
    assert not out.exists()


class _Stop(Exception):
    pass


def _stop() -> int:
    raise _Stop


def test_data_dir_may_name_the_data_set_folder(cifar_dir, tmp_path, monkeypatch):
    # data_root_for accepts <root>/cifar-10-batches-py as well as <root>; stop right after loading.
    monkeypatch.setattr(pipeline, "set_threads", _stop)
    for data_dir in (cifar_dir, cifar_dir.parent):
        with pytest.raises(_Stop):
            train_model("cifar10-cnn", data_dir=data_dir, out_dir=tmp_path, log=lambda _: None)
    assert list(tmp_path.iterdir()) == []


def test_the_same_seed_gives_the_same_weights(trained, shared_data, tmp_path):
    folder, _ = trained
    again = train_model(
        "cifar10-cnn",
        data_dir=shared_data,
        preset="smoke",
        epochs=1,
        out_dir=tmp_path,
        seed=0,
        log=lambda _: None,
    )
    first, second = read_manifest(folder), read_manifest(again)
    assert second.files[WEIGHTS_FILE].sha256 == first.files[WEIGHTS_FILE].sha256
    assert second.metrics == first.metrics
