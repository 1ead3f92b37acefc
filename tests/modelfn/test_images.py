"""The image scheme (modelfn/images.py) against the pipelines imported models were
trained with, on real CIFAR-10 test images upscaled (to 64x48, 48x64, ...) so that resize and
crop both act.

Neither torchvision nor transformers runs here, so each reference below is written from its
documented algorithm, independently of the function's code:

- torchvision, `Compose([Resize(s), CenterCrop((h, w)), ToTensor(), Normalize(mean, std)])` on a
  PIL image: Resize(int) sets the shorter side to s and the longer to int(s * long / short) and
  calls PIL's `Image.resize` with the chosen filter; CenterCrop zero-pads an image smaller than
  the crop (floor of half the gap before, the rest after), then crops at
  top = int(round((H - h) / 2.0)), left likewise; ToTensor is float32 / 255, CHW; Normalize is
  (x - mean) / std per channel.
- a Hugging Face image processor (the PIL-based ones, e.g. CLIPImageProcessor) given a
  preprocessor_config.json: convert to RGB; do_resize with size {"shortest_edge": s}: the same
  output size as torchvision, through `PIL.Image.resize(resample=config["resample"])`;
  do_center_crop with crop_size: top = (H - h) // 2, left likewise (the scheme's crop_rounding
  "floor"; torchvision's is "round"); do_rescale: float64 *
  rescale_factor, then float32; do_normalize: (x - image_mean) / image_std in float32; channels
  first.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from functions.tasks import image_classification as ic
from modelfn import images as image_scheme
from modelfn.artifact import ArtifactError, ImagePreprocessing, TensorSpec
from modelfn.registry import REPO_ROOT

CIFAR = REPO_ROOT.parent / "shared" / "data" / "cifar-10-batches-py"
IMAGES = 24  # real test images per size
TOLERANCE = 1e-6
FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # CLIP's processor config, a common import
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture(scope="module")
def cifar() -> NDArray[np.uint8]:
    """The first real CIFAR-10 test images, [n, 32, 32, 3]."""
    if not (CIFAR / "test_batch").is_file():
        pytest.skip(f"CIFAR-10 test batch not found in {CIFAR}")
    from training.data.cifar10 import load_cifar10

    return load_cifar10(CIFAR).test.images[:IMAGES].transpose(0, 2, 3, 1)


def upscaled(images: NDArray[np.uint8], width: int, height: int) -> list[bytes]:
    """Each image as a PNG of width x height (bicubic upscaling: real, smooth pixels)."""
    pngs = []
    for pixels in images:
        buffer = io.BytesIO()
        Image.fromarray(pixels).resize((width, height), Image.Resampling.BICUBIC).save(
            buffer, format="PNG"
        )
        pngs.append(buffer.getvalue())
    return pngs


def served(pngs: list[bytes], spec: ImagePreprocessing) -> NDArray[np.float32]:
    """The function's input tensor for the PNGs, sent base64 as a client sends them."""
    return ic.preprocess([base64.b64encode(png).decode("ascii") for png in pngs], spec)


# --- the references ------------------------------------------------------------------------------


def torchvision_reference(
    png: bytes,
    *,
    resize: int | tuple[int, int],
    crop: tuple[int, int] | None,
    interpolation: str,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
) -> NDArray[np.float32]:
    """Resize(resize) [+ CenterCrop(crop)] + ToTensor + Normalize on the PNG, [3, h, w]."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    w, h = image.size
    if isinstance(resize, int):  # Resize(int): the shorter side
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = resize, int(resize * long / short)
        size = (new_short, new_long) if w <= h else (new_long, new_short)
    else:  # Resize((h, w))
        size = (resize[1], resize[0])
    if size != image.size:
        image = image.resize(size, FILTERS[interpolation])
    if crop is not None:
        crop_h, crop_w = crop
        w, h = image.size
        if crop_w > w or crop_h > h:
            pad_l, pad_t = max(crop_w - w, 0) // 2, max(crop_h - h, 0) // 2
            padded = Image.new("RGB", (max(w, crop_w), max(h, crop_h)))  # fill 0
            padded.paste(image, (pad_l, pad_t))
            image = padded
            w, h = image.size
        top, left = round((h - crop_h) / 2.0), round((w - crop_w) / 2.0)  # int(round(...))
        image = image.crop((left, top, left + crop_w, top + crop_h))
    x = np.asarray(image).transpose(2, 0, 1).astype(np.float32) / np.float32(255)
    m = np.asarray(mean, np.float32)[:, None, None]
    s = np.asarray(std, np.float32)[:, None, None]
    return np.asarray((x - m) / s, dtype=np.float32)


PIL_RESAMPLE = {0: "nearest", 2: "bilinear", 3: "bicubic"}  # PILImageResampling's values


def hf_reference(png: bytes, config: dict[str, Any]) -> NDArray[np.float32]:
    """A PIL-based Hugging Face image processor's pixel_values for one image, [3, h, w]."""
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    if config["do_resize"]:
        shortest = config["size"]["shortest_edge"]
        height, width = image.shape[:2]
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = shortest, int(shortest * long / short)
        new_h, new_w = (new_long, new_short) if width <= height else (new_short, new_long)
        resample = FILTERS[PIL_RESAMPLE[config["resample"]]]
        image = np.array(Image.fromarray(image).resize((new_w, new_h), resample=resample))
    if config["do_center_crop"]:
        crop_h, crop_w = config["crop_size"]["height"], config["crop_size"]["width"]
        top, left = (image.shape[0] - crop_h) // 2, (image.shape[1] - crop_w) // 2
        image = image[top : top + crop_h, left : left + crop_w]
    x = image.astype(np.float32)
    if config["do_rescale"]:
        x = (image.astype(np.float64) * config["rescale_factor"]).astype(np.float32)
    if config["do_normalize"]:
        x = (x - np.asarray(config["image_mean"], x.dtype)) / np.asarray(
            config["image_std"], x.dtype
        )
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def scheme_of(config: dict[str, Any]) -> ImagePreprocessing:
    """The ImagePreprocessing that states a preprocessor_config.json (what an importer writes)."""
    return ImagePreprocessing(
        height=config["crop_size"]["height"],
        width=config["crop_size"]["width"],
        resize=config["size"]["shortest_edge"],
        interpolation=PIL_RESAMPLE[config["resample"]],  # type: ignore[arg-type]
        scale=config["rescale_factor"],
        mean=tuple(config["image_mean"]),
        std=tuple(config["image_std"]),
        crop_rounding="floor",  # image_transforms.center_crop's (H - h) // 2
    )


def preprocessor_config(**changes: Any) -> dict[str, Any]:
    """A CLIP-like preprocessor_config.json, scaled to CIFAR's size, as the file holds it."""
    text = json.dumps(
        {
            "do_convert_rgb": True,
            "do_resize": True,
            "size": {"shortest_edge": 40},
            "resample": 3,
            "do_center_crop": True,
            "crop_size": {"height": 32, "width": 32},
            "do_rescale": True,
            "rescale_factor": 0.00392156862745098,
            "do_normalize": True,
            "image_mean": list(CLIP_MEAN),
            "image_std": list(CLIP_STD),
            "image_processor_type": "CLIPImageProcessor",
        }
        | changes
    )
    config: dict[str, Any] = json.loads(text)
    return config


# --- torchvision ---------------------------------------------------------------------------------

# (image width, height), Resize's size, CenterCrop's (h, w), filter
TORCHVISION_CASES = [
    ((64, 48), 40, (32, 32), "bilinear"),
    ((48, 64), 40, (32, 32), "bicubic"),
    ((64, 48), 36, (27, 35), "nearest"),  # 48x36: offsets round(4.5) = 4, round(6.5) = 6
    ((66, 48), 40, (32, 32), "bicubic"),  # 55 - 32 = 23: round(11.5) = 12
    ((50, 50), 32, (32, 40), "bilinear"),  # the crop is wider than the resized image: padding
]


@pytest.mark.parametrize(("size", "resize", "crop", "interpolation"), TORCHVISION_CASES)
def test_resize_and_centre_crop_equal_torchvision(
    cifar: NDArray[np.uint8],
    size: tuple[int, int],
    resize: int,
    crop: tuple[int, int],
    interpolation: str,
) -> None:
    pngs = upscaled(cifar, *size)
    spec = ImagePreprocessing(
        height=crop[0],
        width=crop[1],
        resize=resize,
        interpolation=interpolation,  # type: ignore[arg-type]
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    )
    want = np.stack(
        [
            torchvision_reference(
                png,
                resize=resize,
                crop=crop,
                interpolation=interpolation,
                mean=IMAGENET_MEAN,
                std=IMAGENET_STD,
            )
            for png in pngs
        ]
    )
    got = served(pngs, spec)
    assert got.shape == want.shape == (len(pngs), 3, *crop) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE)


def test_a_straight_resize_equals_torchvision_resize_to_a_size(cifar: NDArray[np.uint8]) -> None:
    pngs = upscaled(cifar, 64, 48)
    spec = ImagePreprocessing(
        height=24, width=28, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD
    )
    want = [
        torchvision_reference(
            png,
            resize=(24, 28),
            crop=None,
            interpolation="bicubic",
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
        )
        for png in pngs
    ]
    np.testing.assert_allclose(served(pngs, spec), np.stack(want), rtol=0, atol=TOLERANCE)


def test_nhwc_and_bgr_are_the_reference_reordered(cifar: NDArray[np.uint8]) -> None:
    # Mean and std are per RGB channel; the channel order changes after normalising.
    pngs = upscaled(cifar, 48, 64)
    base = ImagePreprocessing(height=32, width=32, resize=40, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    want = np.stack(
        [
            torchvision_reference(
                png,
                resize=40,
                crop=(32, 32),
                interpolation="bilinear",
                mean=IMAGENET_MEAN,
                std=IMAGENET_STD,
            )
            for png in pngs
        ]
    )
    cases = {
        ("NCHW", "RGB"): want,
        ("NHWC", "RGB"): want.transpose(0, 2, 3, 1),
        ("NCHW", "BGR"): want[:, ::-1],
        ("NHWC", "BGR"): want[:, ::-1].transpose(0, 2, 3, 1),
    }
    for (layout, order), expected in cases.items():
        spec = base.model_copy(update={"layout": layout, "channel_order": order})
        got = served(pngs, spec)
        assert got.flags["C_CONTIGUOUS"] and got.shape == expected.shape, (layout, order)
        np.testing.assert_allclose(
            got, expected, rtol=0, atol=TOLERANCE, err_msg=f"{layout} {order}"
        )
    assert np.abs(want[:, 0] - want[:, 2]).max() > 0.1  # BGR is not RGB on these images


# --- a Hugging Face image processor ---------------------------------------------------------------


@pytest.mark.parametrize("size", [(64, 48), (48, 64), (40, 40), (70, 48)])
@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"resample": 2, "size": {"shortest_edge": 36}, "crop_size": {"height": 30, "width": 34}},
        # Inception-style: [-1, 1] from scale 1/127.5 and mean = std = 1
        {"rescale_factor": 1 / 127.5, "image_mean": [1, 1, 1], "image_std": [1, 1, 1]},
    ],
    ids=["clip", "bilinear-crop", "scale"],
)
def test_a_hugging_face_processor_config_is_served_as_the_processor_computes(
    cifar: NDArray[np.uint8], size: tuple[int, int], changes: dict[str, Any]
) -> None:
    config = preprocessor_config(**changes)
    pngs = upscaled(cifar, *size)
    want = np.stack([hf_reference(png, config) for png in pngs])
    got = served(pngs, scheme_of(config))
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE)


def test_torchvision_and_hugging_face_crop_one_pixel_apart_when_the_gap_is_3_mod_4(
    cifar: NDArray[np.uint8],
) -> None:
    # 66x48 resized to shortest edge 40 is 55x40: the crop's gap is 23 columns. torchvision starts
    # at round(11.5) = 12, a Hugging Face processor at 23 // 2 = 11. The scheme's crop_rounding
    # says which: "floor" serves the processor's pixels, "round" one column to the right.
    config = preprocessor_config()
    pngs = upscaled(cifar[:4], 66, 48)
    hf = np.stack([hf_reference(png, config) for png in pngs])
    floor = served(pngs, scheme_of(config))
    rounded = served(pngs, scheme_of(config).model_copy(update={"crop_rounding": "round"}))
    assert (
        image_scheme.crop_offset(55, 32) == 12 and image_scheme.crop_offset(55, 32, "floor") == 11
    )
    np.testing.assert_allclose(floor, hf, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(rounded[..., :-1], hf[..., 1:], rtol=0, atol=TOLERANCE)
    assert np.abs(rounded - hf).max() > 1e-2


# --- the built-in scheme is unchanged ------------------------------------------------------------


def test_without_resize_at_the_graph_size_the_tensor_is_cifar10_cnns_bit_for_bit(
    cifar: NDArray[np.uint8],
) -> None:
    # What the function computed before the scheme grew: float32 x / 255, then mean and std.
    spec = ImagePreprocessing(height=32, width=32, mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26))
    x = cifar.astype(np.float32) / np.float32(255.0)
    before = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    want = np.ascontiguousarray(before.transpose(0, 3, 1, 2))
    assert np.array_equal(ic.preprocess([p.tolist() for p in cifar], spec), want)
    assert np.array_equal(served(upscaled(cifar, 32, 32), spec), want)


# --- the pieces ----------------------------------------------------------------------------------


def test_resized_size_truncates_the_longer_side_like_torchvision() -> None:
    assert image_scheme.resized_size(640, 480, 256) == (341, 256)  # 341.33
    assert image_scheme.resized_size(480, 640, 256) == (256, 341)
    assert image_scheme.resized_size(500, 333, 224) == (336, 224)  # 336.33
    assert image_scheme.resized_size(300, 300, 224) == (224, 224)


def test_crop_offsets_round_half_to_even() -> None:
    assert [image_scheme.crop_offset(32 + gap, 32) for gap in range(8)] == [0, 0, 1, 2, 2, 2, 3, 4]


def test_a_manifest_whose_graph_does_not_take_the_schemes_layout_is_refused() -> None:
    spec = ImagePreprocessing(height=32, width=32, layout="NHWC", mean=(0, 0, 0), std=(1, 1, 1))
    ic.check_input_shape(TensorSpec(name="x", datatype="FP32", shape=[-1, 32, 32, 3]), spec)
    ic.check_input_shape(TensorSpec(name="x", datatype="FP32", shape=[-1, -1, -1, 3]), spec)
    with pytest.raises(ArtifactError, match=r"shape \[-1, 3, 32, 32\].*NHWC batches"):
        ic.check_input_shape(TensorSpec(name="x", datatype="FP32", shape=[-1, 3, 32, 32]), spec)
