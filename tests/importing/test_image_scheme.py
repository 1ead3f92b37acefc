"""The image scheme: its size from the graph, and the numpy/PIL replay the parity gate feeds,
checked against pixels computed by hand (nearest-neighbour at an exact 2x scale is exact)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from importing import ImageOptions, ImportRefused
from importing.image_scheme import image_preprocessing, preprocess_image
from modelfn.artifact import ImagePreprocessing, TensorSpec

UNIT = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "scale": 1.0}  # pixels unchanged


def pattern(width: int, height: int) -> np.ndarray:
    """HxWx3 uint8, every pixel different, channels different."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 7 + y, y * 11 + x, (x + y) * 3], axis=-1).astype(np.uint8)


def test_shorter_side_resize_then_centre_crop_as_torchvision_computes_them() -> None:
    pixels = pattern(20, 10)  # landscape: the height is the shorter side
    spec = ImagePreprocessing(height=10, width=10, resize=20, interpolation="nearest", **UNIT)
    x = preprocess_image(Image.fromarray(pixels), spec)
    # 20 wide x 10 high -> shorter side 20: 40 x 20, exactly 2x; centre crop 10x10 from
    # left round((40 - 10) / 2) = 15, top round((20 - 10) / 2) = 5.
    doubled = pixels.repeat(2, axis=0).repeat(2, axis=1)
    expected = doubled[5:15, 15:25].transpose(2, 0, 1)[None]
    assert x.shape == (1, 3, 10, 10) and x.dtype == np.float32
    np.testing.assert_array_equal(x, expected.astype(np.float32))


def test_without_resize_the_image_goes_straight_to_the_size() -> None:
    pixels = pattern(4, 4)
    spec = ImagePreprocessing(height=8, width=8, interpolation="nearest", **UNIT)
    x = preprocess_image(Image.fromarray(pixels), spec)
    np.testing.assert_array_equal(x[0], pixels.repeat(2, 0).repeat(2, 1).transpose(2, 0, 1))


def test_scale_mean_std_then_bgr_then_nhwc() -> None:
    pixels = np.zeros((2, 2, 3), np.uint8)
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = 255, 51, 0  # one colour: R, G, B
    spec = ImagePreprocessing(
        height=2, width=2, mean=(0.5, 0.2, 0.0), std=(0.5, 0.1, 1.0),
        channel_order="BGR", layout="NHWC",
    )  # fmt: skip
    x = preprocess_image(Image.fromarray(pixels), spec)
    assert x.shape == (1, 2, 2, 3)
    # R: (1 - 0.5) / 0.5 = 1; G: (0.2 - 0.2) / 0.1 = 0; B: 0; then reversed to B, G, R
    np.testing.assert_allclose(x[0, 0, 0], [0.0, 0.0, 1.0], atol=1e-6)


def test_a_greyscale_or_rgba_image_is_read_as_rgb() -> None:
    spec = ImagePreprocessing(height=2, width=2, **UNIT)
    grey = Image.fromarray(np.full((2, 2), 9, np.uint8))
    assert preprocess_image(grey, spec).tolist() == np.full((1, 3, 2, 2), 9.0).tolist()


def test_the_size_comes_from_a_graph_that_fixes_it() -> None:
    graph_input = TensorSpec(name="pixels", datatype="FP32", shape=[-1, 224, 224, 3])
    options = ImageOptions(mean=(0.5,) * 3, std=(0.5,) * 3, layout="NHWC", resize=256)
    spec = image_preprocessing(options, graph_input)
    assert (spec.height, spec.width, spec.resize, spec.layout) == (224, 224, 256, "NHWC")


def test_a_graph_of_any_size_needs_the_size_given() -> None:
    graph_input = TensorSpec(name="image", datatype="FP32", shape=[-1, 3, -1, -1])
    with pytest.raises(ImportRefused, match=r"give --image-size H\[xW\]"):
        image_preprocessing(ImageOptions(mean=(0.5,) * 3, std=(0.5,) * 3), graph_input)
    sized = ImageOptions(mean=(0.5,) * 3, std=(0.5,) * 3, size=(64, 48))
    spec = image_preprocessing(sized, graph_input)
    assert (spec.height, spec.width) == (64, 48)


def test_a_resize_smaller_than_the_crop_is_refused_with_the_reason() -> None:
    options = ImageOptions(mean=(0.5,) * 3, std=(0.5,) * 3, size=(224, 224), resize=200)
    with pytest.raises(ImportRefused, match="resize 200 is smaller than the 224x224 crop"):
        image_preprocessing(options, None)
