"""The image scheme of `ImagePreprocessing`: decoded RGB pixels -> the graph's input tensor.

Two steps, each the one place that does it:

- `fit`: the geometry. With `resize`, torchvision's `Resize(int)` then `CenterCrop((h, w))` on a
  PIL image: the shorter side to `resize` pixels, the longer one `int(resize * long / short)`
  (truncated, as torchvision computes it), resampled by PIL's filter (what torchvision's Resize
  runs on a PIL image), then the centre crop at torchvision's offsets, `round((H - h) / 2)` with
  Python's round-half-to-even, zero-padded first where the image is smaller than the crop.
  Without `resize`: straight to height x width (cifar10-cnn's scheme, unchanged).
- `normalise`: x * scale -> (x - mean) / std per RGB channel -> channel order -> layout, float32.

A Hugging Face image processor (shortest_edge, crop_size, rescale_factor, image_mean/std) computes
the same resize and the same values, but crops at `(H - h) // 2`: one pixel nearer the top/left
when H - h is 3 modulo 4 (tests/modelfn/test_images.py shows both). The scheme's `crop_rounding`
says which: "round" (torchvision, the default) or "floor" (Hugging Face, what an imported
preprocessor_config.json declares).
`edge/standalone_runner.py` replays these steps without modelfn; a test holds the two equal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from modelfn.artifact import CropRounding, ImagePreprocessing

if TYPE_CHECKING:
    from PIL import Image


def resized_size(width: int, height: int, shorter: int) -> tuple[int, int]:
    """(width, height) after torchvision's Resize(shorter): aspect kept, the long side truncated."""
    if width <= height:
        return shorter, int(shorter * height / width)
    return int(shorter * width / height), shorter


def crop_offset(size: int, crop: int, rounding: CropRounding = "round") -> int:
    """The centre crop's first row (or column): torchvision CenterCrop's round-half-to-even of the
    centred start ("round"), or a Hugging Face image processor's floor of it ("floor")."""
    return (size - crop) // 2 if rounding == "floor" else round((size - crop) / 2.0)


def center_crop(
    pixels: NDArray[np.uint8], height: int, width: int, rounding: CropRounding = "round"
) -> NDArray[np.uint8]:
    """[H, W, 3] -> [height, width, 3] from the centre (`crop_offset`'s `rounding`); zero-padded
    first where it is smaller, split as torchvision pads (the odd pixel after, not before)."""
    h, w = pixels.shape[:2]
    if height > h or width > w:
        dh, dw = max(height - h, 0), max(width - w, 0)
        pixels = np.pad(pixels, ((dh // 2, (dh + 1) // 2), (dw // 2, (dw + 1) // 2), (0, 0)))
        h, w = pixels.shape[:2]
    top, left = crop_offset(h, height, rounding), crop_offset(w, width, rounding)
    return np.ascontiguousarray(pixels[top : top + height, left : left + width])


def fit(image: Image.Image, spec: ImagePreprocessing) -> NDArray[np.uint8]:
    """A decoded RGB image -> [spec.height, spec.width, 3] uint8 by the scheme's geometry."""
    from PIL import Image

    resample = {
        "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC,
        "nearest": Image.Resampling.NEAREST,
    }[spec.interpolation]
    if spec.resize is None:
        if image.size != (spec.width, spec.height):
            image = image.resize((spec.width, spec.height), resample)
        return np.asarray(image, dtype=np.uint8)
    size = resized_size(*image.size, spec.resize)
    if image.size != size:  # torchvision returns the image itself when the size is already right
        image = image.resize(size, resample)
    pixels = np.asarray(image, dtype=np.uint8)
    return center_crop(pixels, spec.height, spec.width, spec.crop_rounding)


def normalise(pixels: NDArray[np.uint8], spec: ImagePreprocessing) -> NDArray[np.float32]:
    """[N, H, W, 3] RGB uint8 -> the graph's float32 batch: [N, 3, H, W] (NCHW) or [N, H, W, 3].

    Mean and std are per RGB channel, applied before the channel order is changed.
    """
    # x * scale as one float32 per level, computed in float64 and rounded once: for 1/255 these are
    # exactly float32(x) / 255 (ToTensor's division), and exactly a Hugging Face processor's rescale
    # (float64 multiply, then float32). One table look-up instead of a multiply per pixel.
    levels = (np.arange(256, dtype=np.float64) * spec.scale).astype(np.float32)
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    x = (levels[pixels] - mean) / std
    if spec.channel_order == "BGR":
        x = x[..., ::-1]
    if spec.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=np.float32)
