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
    # A frozen 2x2 patch-whitening convolution as the stem instead of a learned conv-bn-relu
    # (airbench): its filters are the eigenvectors of the training patches' covariance, set by
    # `init_from_data`, so the first stage sees decorrelated inputs from step 0.
    whiten: bool = False
    # In eval mode, average the logits of the image and its mirror image (test-time
    # augmentation); it is part of the forward pass, so the ONNX graph serves it too.
    tta_flip: bool = False


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


class PatchWhitening(nn.Conv2d):
    """A 2x2 convolution (no padding: 32x32 -> 31x31) whose filters whiten the image's patches.

    `fit` sets the weights to the covariance eigenvectors of every 2x2x3 patch of the training
    images, each scaled by 1/sqrt(its eigenvalue), in both signs (so the ReLU after it keeps the
    information of both): 2 x 12 channels of decorrelated, unit-variance input. The weights are
    frozen; the bias trains. Keller Jordan's airbench (after Page 2018's "How to train your
    ResNet") starts this way.
    """

    def __init__(self, in_channels: int, patch: int = 2, eps: float = 5e-4) -> None:
        super().__init__(in_channels, 2 * in_channels * patch * patch, kernel_size=patch)
        self.eps = eps
        self.weight.requires_grad_(False)

    @torch.no_grad()
    def fit(self, images: torch.Tensor) -> None:
        """images: float32 [N, C, H, W], normalised as the model will see them."""
        c, k = self.in_channels, self.kernel_size[0]
        patches = images.unfold(2, k, 1).unfold(3, k, 1)  # [N, C, H', W', k, k]
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k)  # conv weight order
        eigenvalues, eigenvectors = torch.linalg.eigh(torch.cov(patches.T.double()))
        filters = eigenvectors.T / torch.sqrt(eigenvalues + self.eps)[:, None]
        filters = filters.float().reshape(-1, c, k, k)
        self.weight.copy_(torch.cat([filters, -filters]))


class Cifar10CNN(nn.Module):
    def __init__(self, config: Cifar10CNNConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        stem_out = 2 * config.in_channels * 4 if config.whiten else w
        self.stem = (
            nn.Sequential(PatchWhitening(config.in_channels), nn.ReLU(inplace=True))
            if config.whiten
            else conv_bn_relu(config.in_channels, w)
        )  # [B, w, 32, 32], or [B, 24, 31, 31] whitened
        widths = [stem_out, 2 * w, 4 * w, 8 * w]
        self.stages = nn.Sequential(
            *(
                Stage(widths[i], widths[i + 1], residual=i in config.residual_stages)
                for i in range(3)
            )
        )  # [B, 8w, 4, 4]
        self.pool = nn.AdaptiveMaxPool2d(1)  # [B, 8w, 1, 1]; fixed output size for any input size
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(widths[3], config.num_classes)

    def init_from_data(self, images: torch.Tensor) -> None:
        """Called by the trainer once, on the normalised training images, before the first step."""
        if self.config.whiten:
            whitening = self.stem[0]
            assert isinstance(whitening, PatchWhitening)
            whitening.fit(images)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        x = self.pool(x).flatten(1)
        logits: torch.Tensor = self.head(self.dropout(x))
        return logits * self.config.logit_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.tta_flip and not self.training:
            return 0.5 * (self.logits(x) + self.logits(x.flip(3)))
        return self.logits(x)
