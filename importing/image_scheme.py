"""The image scheme an imported classifier declares (modelfn.artifact.ImagePreprocessing), built
from the import's options and checked against its graph; the user's example images go through
the core's implementation of it (modelfn/images.py), the same code the function runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from importing.errors import ImportRefused
from importing.tensors import shape_text
from modelfn.artifact import ImagePreprocessing, TensorSpec
from modelfn.images import fit, normalise

if TYPE_CHECKING:
    from PIL import Image


@dataclass(frozen=True)
class ImageOptions:
    """How an image becomes the graph's input; mean and std have no default on purpose: a wrong
    normalisation passes every shape check and only shows as wrong answers.

    `size` is (height, width) after any resize and crop; None takes it from the graph's input
    when the graph fixes it. `resize` is the shorter side before the centre crop.
    """

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    size: tuple[int, int] | None = None
    resize: int | None = None
    interpolation: Literal["bilinear", "bicubic", "nearest"] = "bilinear"
    scale: float = 1 / 255
    channel_order: Literal["RGB", "BGR"] = "RGB"
    layout: Literal["NCHW", "NHWC"] = "NCHW"


def image_input_shape(spec: ImagePreprocessing) -> list[int]:
    """The graph input an image scheme feeds: [-1, 3, H, W] (NCHW) or [-1, H, W, 3] (NHWC)."""
    if spec.layout == "NCHW":
        return [-1, 3, spec.height, spec.width]
    return [-1, spec.height, spec.width, 3]


def image_preprocessing(
    options: ImageOptions, graph_input: TensorSpec | None
) -> ImagePreprocessing:
    """The scheme for the manifest, its size taken from or checked against `graph_input`."""
    size = options.size
    if graph_input is not None:
        size = _size_from_graph(options, graph_input)
    if size is None:
        raise ImportRefused(
            "image-classification needs the graph's input size: give --image-size H[xW] "
            "(ImageOptions.size), the height and width after any resize and crop"
        )
    try:
        return ImagePreprocessing(
            height=size[0],
            width=size[1],
            mean=options.mean,
            std=options.std,
            layout=options.layout,
            resize=options.resize,
            interpolation=options.interpolation,
            scale=options.scale,
            channel_order=options.channel_order,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'image'}: {e['msg']}" for e in exc.errors()
        )
        raise ImportRefused(f"image options: {problems}") from exc


def _size_from_graph(options: ImageOptions, graph_input: TensorSpec) -> tuple[int, int] | None:
    shape = graph_input.shape
    channel_axis = 1 if options.layout == "NCHW" else 3
    if len(shape) != 4 or shape[channel_axis] != 3:
        other = "NHWC" if options.layout == "NCHW" else "NCHW"
        hint = ""
        if len(shape) == 4 and shape[4 - channel_axis] == 3:
            hint = f" (the graph looks {other}: --layout {other})"
        raise ImportRefused(
            f"graph input {graph_input.name!r} is {shape_text(shape)}; image-classification with "
            f"layout {options.layout} needs "
            f"{'[N, 3, H, W]' if options.layout == 'NCHW' else '[N, H, W, 3]'}{hint}"
        )
    height, width = (shape[2], shape[3]) if options.layout == "NCHW" else (shape[1], shape[2])
    if height == -1 or width == -1:  # a graph that takes any size: the options must say which
        return options.size
    if options.size is not None and options.size != (height, width):
        raise ImportRefused(
            f"--image-size {options.size[0]}x{options.size[1]} but graph input "
            f"{graph_input.name!r} is {shape_text(shape)}, which fixes {height}x{width}; "
            "leave --image-size out or give the graph's size"
        )
    return (height, width)


def preprocess_image(image: Image.Image, spec: ImagePreprocessing) -> NDArray[np.float32]:
    """One image -> the graph's input for it, batch axis included: [1, 3, H, W] or [1, H, W, 3].

    The core's scheme (modelfn/images.py), the very code the function runs, so the parity gate
    feeds the graph what serving will.
    """
    return normalise(fit(image.convert("RGB"), spec)[None], spec)


def random_images(spec: ImagePreprocessing, count: int, seed: int = 0) -> list[Any]:
    """`count` PIL images of random pixels, big enough for the scheme's resize and crop."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    side = spec.resize or 0
    height, width = max(spec.height, side), max(spec.width, side)
    return [
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        for _ in range(count)
    ]
