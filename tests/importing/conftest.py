"""Fixtures for the import tests: real CIFAR-10 test images, a ResNet-18's weights in both
formats a user brings, and a small ONNX graph exported as a user would."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from modelfn.registry import REPO_ROOT
from tests.support.import_sources import SmallCnn, export_onnx, trained_resnet

CIFAR_DIR = REPO_ROOT.parent / "shared" / "data" / "cifar-10-batches-py"


@pytest.fixture(scope="session")
def cifar_test_images(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[str]]:
    """Four real CIFAR-10 test images (different classes) as PNG files, and the label names."""
    if not (CIFAR_DIR / "test_batch").is_file():
        pytest.skip(f"real CIFAR-10 sample not found at {CIFAR_DIR} (expected ../shared/data)")
    from PIL import Image

    from training.data.cifar10 import load_cifar10

    data = load_cifar10(CIFAR_DIR)
    folder = tmp_path_factory.mktemp("cifar-examples")
    paths = []
    for i in (0, 1, 3, 4):  # cat, ship, airplane, frog: test_batch's first rows
        path = folder / f"test-{i}-{data.label_names[data.test.labels[i]]}.png"
        Image.fromarray(data.test.images[i].transpose(1, 2, 0)).save(path)
        paths.append(path)
    return paths, data.label_names


@pytest.fixture(scope="session")
def resnet_weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same ResNet-18 weights as safetensors and as a torch.save state dict."""
    from safetensors.torch import save_model

    model = trained_resnet()
    folder = tmp_path_factory.mktemp("resnet-weights")
    save_model(model, str(folder / "resnet18.safetensors"))
    torch.save(model.state_dict(), folder / "resnet18.pt")
    return {"safetensors": folder / "resnet18.safetensors", "pt": folder / "resnet18.pt"}


@pytest.fixture(scope="session")
def small_cnn_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("small-cnn")
    return export_onnx(SmallCnn(), (torch.randn(2, 3, 8, 8),), folder / "model.onnx", ["image"])
