"""preprocessor_config.json -> the image scheme (importing/hf_image.py), checked against the image
processors themselves: transformers' PIL ones, CLIPImageProcessorPil (shortest edge, then a
centre crop) and ViTImageProcessorPil (straight to a size), run on real CIFAR-10 test images
upscaled so that resize and crop both act, and the function's preprocessing (modelfn.images, as
functions/tasks/image_classification.py calls it) run on the same PNGs.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from importing import ImportRefused
from importing.hf_image import image_scheme
from tests.modelfn.test_images import cifar, served, upscaled  # noqa: F401 - cifar: a fixture
from tests.support.hf_folders import CLIP_MEAN, CLIP_STD, processor

TOLERANCE = 1e-6


def processed(pngs: list[bytes], image_processor: Any) -> NDArray[np.float32]:
    images = [Image.open(io.BytesIO(png)).convert("RGB") for png in pngs]
    return np.asarray(image_processor(images, return_tensors="np")["pixel_values"])


def config_of(image_processor: Any) -> dict[str, Any]:
    """The processor's preprocessor_config.json, as save_pretrained writes it."""
    config: dict[str, Any] = json.loads(image_processor.to_json_string())
    return config


@pytest.mark.parametrize(
    ("size", "changes"),
    [
        ((64, 48), {}),  # 46x35 after the resize: a 3-row margin, where the crops differ
        ((48, 70), {"resample": 2}),
        ((66, 66), {"size": {"shortest_edge": 40}, "crop_size": {"height": 30, "width": 34}}),
        ((64, 48), {"resample": 0, "do_normalize": False}),
    ],
    ids=["clip-margin-3", "bilinear-portrait", "crop-not-square", "nearest-unnormalised"],
)
def test_the_scheme_serves_what_clips_processor_computes(
    cifar: NDArray[np.uint8],  # noqa: F811 - the fixture
    size: tuple[int, int],
    changes: dict[str, Any],
) -> None:
    image_processor = processor(**changes)
    pngs = upscaled(cifar, *size)
    scheme = image_scheme(config_of(image_processor), {})
    want = processed(pngs, image_processor)
    got = served(pngs, scheme)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE)


def test_a_straight_resize_serves_what_vits_processor_computes(
    cifar: NDArray[np.uint8],  # noqa: F811 - the fixture
) -> None:
    from transformers import ViTImageProcessorPil

    image_processor = ViTImageProcessorPil(
        size={"height": 24, "width": 28}, image_mean=[0.5] * 3, image_std=[0.5] * 3
    )
    pngs = upscaled(cifar, 64, 48)
    scheme = image_scheme(config_of(image_processor), {"image_size": [24, 28]})
    assert (scheme.height, scheme.width, scheme.resize) == (24, 28, None)
    np.testing.assert_allclose(
        served(pngs, scheme), processed(pngs, image_processor), rtol=0, atol=TOLERANCE
    )


def test_the_clip_config_as_a_scheme() -> None:
    scheme = image_scheme(config_of(processor()), {"image_size": 32})
    assert scheme.model_dump() == {
        "kind": "image",
        "height": 32,
        "width": 32,
        "mean": tuple(CLIP_MEAN),
        "std": tuple(CLIP_STD),
        "layout": "NCHW",
        "resize": 35,
        "interpolation": "bicubic",
        "scale": 1 / 255,
        "channel_order": "RGB",
        "crop_rounding": "floor",
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"crop_pct": 0.875}, "crop_pct 0.875"),
        ({"do_pad": True}, "does not pad"),
        ({"do_resize": False}, "do_resize is false"),
        ({"size": 224}, "size 224 must be an object"),
        ({"size": {"longest_edge": 64}}, "size keys ['longest_edge'] are not replayed"),
        (
            {"size": {"height": 40, "width": 40}},
            "a straight resize to 40x40 followed by a centre crop",
        ),
        ({"do_center_crop": False}, "shortest_edge without do_center_crop"),
        ({"resample": 1}, "resample 1 (LANCZOS)"),
        ({"image_mean": [0.5, 0.5]}, "image_mean must be three numbers"),
    ],
)
def test_what_the_scheme_cannot_replay_is_refused_by_its_key(
    changes: dict[str, Any], message: str
) -> None:
    config = config_of(processor()) | changes
    with pytest.raises(ImportRefused, match="preprocessor_config.json") as caught:
        image_scheme(config, {})
    assert message in str(caught.value)


def test_a_size_the_models_config_contradicts() -> None:
    with pytest.raises(ImportRefused, match="config.json's image_size is 224"):
        image_scheme(config_of(processor()), {"image_size": 224})
