"""A small ResNet-style CNN for 32x32 CIFAR-10 images, in one file.

The shape follows the "ResNet-9" family that trains CIFAR-10 fast (Page 2018, "How to train your
ResNet"; Keller Jordan's cifar10-airbench): a conv stem, then three stages that each widen the
channels, halve the resolution with max-pooling and (in two of them) add a residual block, then
global pooling, dropout and one linear layer. Networks of this shape reach 94% test accuracy on
the full 50k/10k split (Page 2018's ResNet-9; KellerJordan/cifar10-airbench; the figure quoted in
../shared/data/README.md); this module itself has not been measured there. Here it also has to
train in seconds on two CPU cores, hence `width`.

Imports only torch: `Cifar10CNNConfig` (constructor arguments, stored in the artifact manifest)
plus the safetensors weights are everything needed to rebuild the module.

Input: float32 [batch, 3, 32, 32], RGB, already normalised with the training mean/std.
Output: float32 [batch, num_classes] raw logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Cifar10CNNConfig:
    num_classes: int = 10  # CIFAR-10; training sets it from the data set's label names
    in_channels: int = 3  # RGB
    width: int = 64  # stem channels; the 3 stages widen to 2*width, 4*width, 8*width (ResNet-9: 64)
    # Which of the 3 stages (0-based) get a residual block; ResNet-9 has them in the 1st and 3rd.
    residual_stages: tuple[int, ...] = (0, 2)
    dropout: float = 0.2  # before the classifier; 800 training images overfit quickly without it
    # Multiplies the logits: ResNet-9's trick (Page 2018) against a saturated softmax early on.
    logit_scale: float = 0.125


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    # bias=False: the BatchNorm that follows has its own shift, a conv bias would be redundant.
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """x + f(x) with f = two conv-bn-relu at constant channels and resolution (identity shortcut)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_relu(channels, channels), conv_bn_relu(channels, channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual: torch.Tensor = self.body(x)
        return x + residual


class Stage(nn.Sequential):
    """conv-bn-relu to more channels, 2x2 max-pool (halves H and W), optional residual block."""

    def __init__(self, c_in: int, c_out: int, residual: bool) -> None:
        layers: list[nn.Module] = [conv_bn_relu(c_in, c_out), nn.MaxPool2d(2)]
        if residual:
            layers.append(ResidualBlock(c_out))
        super().__init__(*layers)


class Cifar10CNN(nn.Module):
    def __init__(self, config: Cifar10CNNConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.stem = conv_bn_relu(config.in_channels, w)  # [B, w, 32, 32]
        widths = [w, 2 * w, 4 * w, 8 * w]
        self.stages = nn.Sequential(
            *(
                Stage(widths[i], widths[i + 1], residual=i in config.residual_stages)
                for i in range(3)
            )
        )  # [B, 8w, 4, 4]
        self.pool = nn.AdaptiveMaxPool2d(1)  # [B, 8w, 1, 1]; fixed output size for any input size
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(widths[3], config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        x = self.pool(x).flatten(1)
        logits: torch.Tensor = self.head(self.dropout(x))
        return logits * self.config.logit_scale
