"""A Hugging Face image processor's `preprocessor_config.json` as modelfn's image scheme.

The PIL-based processors (ViTImageProcessorPil, CLIPImageProcessorPil, ...; transformers falls
back to them without torchvision) run: convert to RGB -> `do_resize` with `size` (height and
width: straight to that size; shortest_edge: the shorter side, the longer truncated) through
PIL's `resample` filter -> `do_center_crop` to `crop_size` at (H - h) // 2 -> `do_rescale` by
`rescale_factor` -> `do_normalize` with `image_mean`/`image_std`, channels first. That is
`ImagePreprocessing` with `crop_rounding = "floor"` (tests/importing/test_hf_image.py runs the
processors themselves against it). The torchvision backend resizes with torch's antialiased
interpolation instead, a few levels apart on some pixels; the PIL one is what is replayed.

Anything the scheme cannot replay is refused by its key: a crop_pct resize, padding, a longest
edge, a straight resize followed by a crop, a resampling filter other than nearest, bilinear or
bicubic.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ValidationError

from importing.errors import ImportRefused
from modelfn.artifact import ImagePreprocessing

# PIL's Image.Resampling values, as a processor's `resample` stores them.
RESAMPLE: dict[int, Literal["nearest", "bilinear", "bicubic"]] = {
    0: "nearest",
    2: "bilinear",
    3: "bicubic",
}
PIL_NAMES = {1: "LANCZOS", 4: "BOX", 5: "HAMMING"}


def image_scheme(config: dict[str, Any], model_config: dict[str, Any]) -> ImagePreprocessing:
    """The scheme `config` (preprocessor_config.json) describes; ImportRefused naming a key it
    cannot replay, or a size the model's config.json (`image_size`) contradicts."""
    where = "preprocessor_config.json"
    if config.get("crop_pct") is not None:
        raise ImportRefused(
            f"{where}: crop_pct {config['crop_pct']} (resize to size / crop_pct, then crop) is "
            "not a scheme modelfn replays; export the model to ONNX and import it with the "
            "equivalent --resize and --image-size instead"
        )
    if config.get("do_pad"):
        raise ImportRefused(f"{where}: do_pad is true; modelfn's image scheme does not pad")
    if not _flag(config, "do_resize", where):
        raise ImportRefused(
            f"{where}: do_resize is false, so images reach the model at whatever size they are "
            "sent; the graph needs one size: set do_resize with a size"
        )
    size = config.get("size")
    if not isinstance(size, dict):
        raise ImportRefused(
            f"{where}: size {size!r} must be an object ({{'height': H, 'width': W}} or "
            "{'shortest_edge': S}); load and save the processor with transformers 5 to update it"
        )
    crop = _flag(config, "do_center_crop", where, default=False)
    if set(size) == {"height", "width"}:
        if crop:
            raise ImportRefused(
                f"{where}: a straight resize to {size['height']}x{size['width']} followed by a "
                "centre crop is not a scheme modelfn replays (it resizes the shorter side, or "
                "straight to the final size)"
            )
        height, width, resize = int(size["height"]), int(size["width"]), None
    elif set(size) == {"shortest_edge"}:
        if not crop:
            raise ImportRefused(
                f"{where}: size shortest_edge without do_center_crop gives images of every "
                "aspect ratio, and the graph takes one size; set do_center_crop and crop_size"
            )
        crop_size = config.get("crop_size")
        if not (isinstance(crop_size, dict) and set(crop_size) == {"height", "width"}):
            raise ImportRefused(f"{where}: crop_size must be {{'height': H, 'width': W}}")
        height, width = int(crop_size["height"]), int(crop_size["width"])
        resize = int(size["shortest_edge"])
    else:
        raise ImportRefused(
            f"{where}: size keys {sorted(size)} are not replayed; modelfn takes height and "
            "width, or shortest_edge with a centre crop"
        )
    resample = config.get("resample", 2)
    if resample not in RESAMPLE:
        name = PIL_NAMES.get(resample, str(resample))
        raise ImportRefused(
            f"{where}: resample {resample} ({name}) is not one of nearest (0), bilinear (2), "
            "bicubic (3), the filters modelfn's image scheme runs"
        )
    scale = (
        float(config.get("rescale_factor", 1 / 255)) if _flag(config, "do_rescale", where) else 1.0
    )
    mean: Any = (0.0, 0.0, 0.0)
    std: Any = (1.0, 1.0, 1.0)
    if _flag(config, "do_normalize", where):
        mean, std = _triple(config, "image_mean", where), _triple(config, "image_std", where)
    _check_model_size(model_config, height, width)
    try:
        return ImagePreprocessing(
            height=height,
            width=width,
            resize=resize,
            interpolation=RESAMPLE[resample],
            scale=scale,
            mean=mean,
            std=std,
            crop_rounding="floor",  # image_transforms.center_crop: (H - h) // 2
        )
    except ValidationError as exc:
        problems = "; ".join(e["msg"] for e in exc.errors())
        raise ImportRefused(f"{where}: {problems}") from exc


def _flag(config: dict[str, Any], key: str, where: str, default: bool | None = None) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise ImportRefused(
            f"{where} has no {key} (or not true/false); save the image processor with "
            "save_pretrained, which writes every setting"
        )
    return value


def _triple(config: dict[str, Any], key: str, where: str) -> tuple[float, float, float]:
    value = config.get(key)
    if isinstance(value, int | float):
        value = [value] * 3
    if not (isinstance(value, list) and len(value) == 3):
        raise ImportRefused(f"{where}: {key} must be three numbers, one per RGB channel")
    return (float(value[0]), float(value[1]), float(value[2]))


def _check_model_size(model_config: dict[str, Any], height: int, width: int) -> None:
    size = model_config.get("image_size")
    if size is None:
        return
    want = (size, size) if isinstance(size, int) else tuple(size)
    if want != (height, width):
        raise ImportRefused(
            f"preprocessor_config.json makes {height}x{width} images but config.json's "
            f"image_size is {size}: the two files do not belong to one model"
        )
