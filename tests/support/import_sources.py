"""What the import tests build on: models to import (a ResNet-18 with non-initial weights, a small
CNN exported to ONNX as a user would) and the check that a refused import wrote nothing."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from importing import ImageOptions

# CIFAR-10's training-set statistics (training/data/cifar10.py), as the model was "trained" with.
CIFAR_IMAGE = ImageOptions(
    size=(32, 32), mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)
)
RESNET = "tests.support.resnet:resnet18"


def trained_resnet(num_classes: int = 10) -> nn.Module:
    """A ResNet-18 with weights and BatchNorm statistics that are not the initial ones, so a
    weights file that failed to load would show in the outputs."""
    from tests.support.resnet import resnet18

    torch.manual_seed(0)
    model = resnet18(num_classes=num_classes)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
    return model.eval()


def export_onnx(
    model: nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    names: list[str],
    *,
    dynamic_batch: bool = True,
    external_data: bool = False,
) -> Path:
    """Export as a user would, with the dynamo exporter; the batch axis dynamic or not."""
    dynamic = (
        tuple({0: torch.export.Dim("batch", min=1, max=1024)} for _ in example)
        if dynamic_batch
        else None
    )
    with warnings.catch_warnings():  # the exporter's notes about its own internals
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        program = torch.onnx.export(
            model.eval(), example, dynamo=True, input_names=names, dynamic_shapes=dynamic,
            verbose=False,
        )  # fmt: skip
    assert program is not None
    program.save(str(path), external_data=external_data)
    return path


class SmallCnn(nn.Module):
    """[N, 3, 8, 8] -> [N, 4] logits: a classifier small enough to export in a second."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.head = nn.Linear(6, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def nothing_written(out_dir: Path) -> bool:
    """A refused import leaves no file (and no staging folder) under its output folder."""
    return not out_dir.exists() or not any(p.is_file() for p in out_dir.rglob("*"))


def png(path: Path, size: tuple[int, int] = (8, 8), seed: int = 0) -> Path:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path
