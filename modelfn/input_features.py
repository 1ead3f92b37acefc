"""What capture records and drift compares about each input: a few numbers, never the input.

One definition, used by the function when it captures a request (functions/capture.py) and by
training and `modelfn import --examples` when they record a version's reference statistics
(modelfn/reference_stats.py), so the two sides of a drift report are measured the same way:

- an image: its size as sent (`width`, `height`, pixels) and, over the pixels the model sees (after
  the version's resize and crop, 0..255 levels), the mean luma (`brightness`) and each channel's
  mean and standard deviation;
- a text: its length in characters and in the version's tokens, and the fraction of those tokens
  the vocabulary does not know (`oov_rate`; 0 for a tokenizer that has no unknown token).

`KINDS` says which are continuous (a Kolmogorov-Smirnov test applies) and which discrete.
numpy only: this runs inside the function, on the request's own arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

Kind = Literal["continuous", "discrete"]

IMAGE_KINDS: dict[str, Kind] = {
    "width": "discrete",
    "height": "discrete",
    "brightness": "continuous",
    "mean_r": "continuous",
    "mean_g": "continuous",
    "mean_b": "continuous",
    "std_r": "continuous",
    "std_g": "continuous",
    "std_b": "continuous",
}
TEXT_KINDS: dict[str, Kind] = {"chars": "discrete", "tokens": "discrete", "oov_rate": "continuous"}
KINDS: dict[str, Kind] = {**IMAGE_KINDS, **TEXT_KINDS}

# ITU-R BT.601 luma weights: brightness as people see it, not the plain channel mean.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)


_IMAGE_NAMES = list(IMAGE_KINDS)  # the order of image_features' table columns


def image_features(
    sizes: Sequence[tuple[int, int]], pixels: NDArray[Any]
) -> list[dict[str, float]]:
    """One dict per image: `sizes` are (width, height) as sent; `pixels` the [N, H, W, 3] batch
    of 0..255 RGB levels the model sees (any dtype)."""
    batch = np.asarray(pixels)
    if batch.ndim != 4 or batch.shape[-1] != 3 or len(batch) != len(sizes):
        raise ValueError(
            f"image_features: pixels {list(batch.shape)} is not [{len(sizes)}, H, W, 3]"
        )
    # Channels first and contiguous, then plain sums and per-channel dot products: numpy's
    # reductions over the two middle axes of an [N, H, W, 3] array stride by 3 and took 1.6 ms
    # for 16 CIFAR images; this takes 0.11 ms, dicts included (bench/capture.py). float64 sums of 0..255 levels
    # are exact for any image Lambda can hold.
    planes = np.ascontiguousarray(batch.reshape(len(batch), -1, 3).transpose(0, 2, 1))
    values = planes.astype(np.float64)  # [N, 3, pixels]
    count = values.shape[2]
    means = values.sum(axis=2) / count  # [N, 3]
    squares = (values[:, :, None, :] @ values[:, :, :, None])[:, :, 0, 0] / count
    stds = np.sqrt(np.maximum(squares - means * means, 0.0))
    # One table, rounded at once, then one dict per row: building the dicts value by value cost
    # as much as the arithmetic.
    table = np.empty((len(batch), len(_IMAGE_NAMES)))
    table[:, :2] = sizes
    table[:, 2] = means @ _LUMA  # the mean of a linear map is the map of the means
    table[:, 3:6] = means
    table[:, 6:9] = stds
    return [dict(zip(_IMAGE_NAMES, row, strict=True)) for row in np.round(table, 4).tolist()]


def text_features(text: str, tokens: int, unknown: int) -> dict[str, float]:
    """One text: `tokens` it became under the version's tokenizer, `unknown` of them out of
    vocabulary."""
    return {
        "chars": float(len(text)),
        "tokens": float(tokens),
        "oov_rate": round(unknown / tokens, 6) if tokens else 0.0,
    }


def token_text_features(text: str, tokens: Sequence[Any], unknown: Any | None) -> dict[str, float]:
    """One text from its tokens (words or ids) and the token that stands for an unknown one
    (None: the tokenizer has none)."""
    unknowns = sum(1 for t in tokens if t == unknown) if unknown is not None else 0
    return text_features(text, len(tokens), unknowns)
