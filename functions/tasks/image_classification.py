"""Image classification: friendly inputs -> the graph's input tensor -> labelled scores.

Pre-processing replays the scheme `manifest.preprocessing` (an ImagePreprocessing) records, for a
model trained here or imported: RGB pixels (whole 0..255 levels, HxWx3 uint8) -> the scheme's
geometry (resize straight to height x width, or the shorter side then a centre crop) -> scale,
mean/std, channel order, layout (modelfn/images.py). Post-processing scores the graph's raw
logits as `manifest.scores` says (softmax by default) and ranks the top k labels. Over the Open Inference Protocol the graph's
own tensors go in and out unchanged: clients send the normalised tensor the model metadata
describes.

An input item is either a base64 PNG/JPEG string (a `data:image/...;base64,` URL too) or an
HxWx3 nested array of numbers in 0..255. Every problem is a BadInput naming `inputs[i]`.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from numpy.typing import NDArray

from functions.errors import BadInput
from functions.limits import MAX_BATCH, MAX_PIXELS, MAX_TOTAL_PIXELS
from functions.observability import capture_draft
from functions.tasks.classification import (
    Classification,
    check_logits,
    parse_parameters,
    postprocess,
)
from functions.tasks.runner import Runner
from modelfn.artifact import ArtifactError, ImagePreprocessing, Manifest, TensorSpec
from modelfn.images import fit, normalise
from modelfn.input_features import image_features

if TYPE_CHECKING:
    from PIL import Image

IMAGE_FORMATS = ["PNG", "JPEG"]


# --- the task -----------------------------------------------------------------------------------


def check_manifest(manifest: Manifest) -> None:
    """Raise ArtifactError unless the manifest describes a graph this adapter can drive."""
    if not isinstance(manifest.preprocessing, ImagePreprocessing):
        raise ArtifactError(f"{manifest.name}: image-classification needs image preprocessing")
    if len(manifest.inputs) != 1 or manifest.inputs[0].datatype != "FP32":
        raise ArtifactError(f"{manifest.name}: image-classification needs one FP32 input tensor")
    check_input_shape(manifest.inputs[0], manifest.preprocessing)
    check_logits(manifest, "image-classification")


def check_input_shape(graph_input: TensorSpec, spec: ImagePreprocessing) -> None:
    """ArtifactError unless the graph takes the batch the scheme makes (any size where -1)."""
    made = (
        [-1, 3, spec.height, spec.width]
        if spec.layout == "NCHW"
        else [-1, spec.height, spec.width, 3]
    )
    shape = graph_input.shape
    if len(shape) != 4 or any(d not in (-1, m) for d, m in zip(shape[1:], made[1:], strict=True)):
        raise ArtifactError(
            f"input {graph_input.name!r} has shape {shape}, but the preprocessing makes "
            f"{spec.layout} batches {made}; the manifest's preprocessing and graph disagree"
        )


@dataclass(frozen=True)
class ImageClassifier:
    manifest: Manifest
    spec: ImagePreprocessing

    def predict(
        self, run: Runner, inputs: list[Any], parameters: dict[str, Any]
    ) -> list[Classification]:
        """Classify every item of `inputs`; one Classification per item, in order."""
        manifest = self.manifest
        options = parse_parameters(parameters, len(manifest.labels))
        batch = preprocess(inputs, self.spec)
        outputs = run({manifest.inputs[0].name: batch})
        logits = outputs[manifest.outputs[0].name]
        return postprocess(logits, manifest.labels, options.top_k, manifest.scores)

    def signature(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        return list(self.manifest.inputs), list(self.manifest.outputs)

    def infer(
        self, run: Runner, tensors: dict[str, NDArray[Any]], parameters: dict[str, Any]
    ) -> dict[str, NDArray[Any]]:
        # The graph's tensors say everything; request parameters have nothing to change.
        return run(tensors)


def load(manifest: Manifest, folder: Path) -> ImageClassifier:
    check_manifest(manifest)
    assert isinstance(manifest.preprocessing, ImagePreprocessing)  # check_manifest made sure
    return ImageClassifier(manifest, manifest.preprocessing)


# --- pre-processing ---------------------------------------------------------------------------


def preprocess(inputs: list[Any], spec: ImagePreprocessing) -> NDArray[np.float32]:
    """Items -> the normalised float32 batch the graph takes, in the scheme's layout.

    Every item is opened (image headers read, arrays checked) and the request's total decoded
    pixels checked against MAX_TOTAL_PIXELS before any image is decoded.
    """
    if not inputs:
        raise BadInput("inputs: empty; send at least one image")
    if len(inputs) > MAX_BATCH:
        raise BadInput(
            f"inputs: {len(inputs)} items, at most {MAX_BATCH} per request; split the batch"
        )
    opened = [open_item(item, f"inputs[{i}]", spec) for i, item in enumerate(inputs)]
    total = sum(decoded_pixels(item) for item in opened)
    if total > MAX_TOTAL_PIXELS:
        raise BadInput(
            f"inputs: the images decode to {total} pixels in all, over the limit of "
            f"{MAX_TOTAL_PIXELS} per request; send fewer images per request, or downscale them "
            f"(the model sees {spec.width}x{spec.height})"
        )
    pixels = np.stack([fit_pixels(item, spec, f"inputs[{i}]") for i, item in enumerate(opened)])
    draft = capture_draft()
    if draft is not None:  # a sampled request: what the model saw, measured once it is in hand
        draft.features = image_features([sent_size(item) for item in opened], pixels)
    return normalise(pixels, spec)


# An input item once opened: an image whose header is read but whose pixels are not decoded yet,
# or an array of pixels already checked to be HxWx3 in 0..255.
Opened = Union["Image.Image", NDArray[np.uint8]]


def open_item(item: Any, where: str, spec: ImagePreprocessing) -> Opened:
    if isinstance(item, str):
        return decode_image(item, where, spec)
    if isinstance(item, list):
        return array_pixels(item, where)
    raise BadInput(
        f"{where}: expected a base64 PNG/JPEG string or an HxWx3 array of 0..255, "
        f"got {type(item).__name__}"
    )


def decoded_pixels(item: Opened) -> int:
    """How many pixels decoding `item` produces (a JPEG's at the reduced scale it decodes at)."""
    if isinstance(item, np.ndarray):
        return int(item.shape[0] * item.shape[1])
    width, height = item.size
    return width * height


def sent_size(item: Opened) -> tuple[int, int]:
    """(width, height) of an opened item: an array's, or the size an image decodes at."""
    if isinstance(item, np.ndarray):
        return int(item.shape[1]), int(item.shape[0])
    width, height = item.size
    return width, height


def fit_pixels(item: Opened, spec: ImagePreprocessing, where: str) -> NDArray[np.uint8]:
    """An opened item -> [spec.height, spec.width, 3] uint8 by the scheme's geometry."""
    if (
        isinstance(item, np.ndarray)
        and spec.resize is None
        and item.shape[:2] == (spec.height, spec.width)
    ):
        return item  # already the graph's size: no resampling, an exact replay of training
    from PIL import Image

    image = Image.fromarray(item) if isinstance(item, np.ndarray) else decoded_rgb(item, where)
    return fit(image, spec)


def decode_image(text: str, where: str, spec: ImagePreprocessing) -> Image.Image:
    """A base64 string or data URL -> an opened (not yet decoded) PIL image, size-checked."""
    from PIL import Image  # lazy: only requests with encoded images pay for Pillow

    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if not header.endswith(";base64"):
            raise BadInput(f"{where}: a data URL must be base64 (data:image/png;base64,...)")
    try:
        raw = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(
            f"{where}: not valid base64; send the image file's bytes base64-encoded"
        ) from None
    try:
        image = Image.open(io.BytesIO(raw), formats=IMAGE_FORMATS)
    except Exception:  # noqa: BLE001 - Pillow raises several types for bytes it cannot identify
        raise BadInput(f"{where}: not a PNG or JPEG image ({len(raw)} bytes decoded)") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise BadInput(
            f"{where}: image is {width}x{height} ({width * height} pixels), over the limit of "
            f"{MAX_PIXELS}; downscale it before sending"
        )
    try:
        # A JPEG decodes at the smallest power-of-two reduction (down to 1/8) no smaller than the
        # target: a 12 MP photo decodes as 0.2 MP, in a quarter of the time or less (limits.py).
        # Only the decoder is configured here; `image.size` becomes the reduced size. PNG: no-op.
        # With a resize the target is its shorter side in both directions, so that stays whole.
        target = (spec.width, spec.height) if spec.resize is None else (spec.resize,) * 2
        image.draft("RGB", target)
    except (OSError, ValueError) as exc:
        raise BadInput(f"{where}: the image data is truncated or corrupt ({exc})") from None
    return image


def decoded_rgb(image: Image.Image, where: str) -> Image.Image:
    """Decode an opened image to upright RGB."""
    from PIL import ImageOps

    try:
        # Phone photos store their rotation in EXIF. In place: the image is this request's own,
        # and the default would copy it even when there is nothing to turn.
        ImageOps.exif_transpose(image, in_place=True)
        # RGBA, LA, L, P and CMYK all become RGB; an RGB image is used as it is (convert copies).
        return image if image.mode == "RGB" else image.convert("RGB")
    except (OSError, ValueError, SyntaxError) as exc:
        raise BadInput(f"{where}: the image data is truncated or corrupt ({exc})") from None


def array_pixels(item: list[Any], where: str) -> NDArray[np.uint8]:
    """A nested list of RGB values in 0..255 -> HxWx3 uint8, rounded to whole levels.

    Training only saw whole 0..255 levels, so fractional values are rounded (np.rint) whatever
    the array's size, and every path into the graph goes through the same uint8 pixels.
    """
    try:
        array = np.asarray(item)
    except ValueError:
        raise BadInput(f"{where}: ragged array; every row must have the same length") from None
    if array.dtype.kind not in "iuf":
        raise BadInput(
            f"{where}: array values must be numbers in 0..255, got {array.dtype.kind!r} data"
        )
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] < 1 or array.shape[1] < 1:
        raise BadInput(
            f"{where}: expected an HxWx3 array of RGB pixels, got shape {list(array.shape)}"
        )
    if array.shape[0] * array.shape[1] > MAX_PIXELS:
        raise BadInput(
            f"{where}: {array.shape[0]}x{array.shape[1]} pixels is over the limit of {MAX_PIXELS}"
        )
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 255:
        raise BadInput(f"{where}: pixel values must be in 0..255, got {array.min()}..{array.max()}")
    return np.asarray(np.rint(array), dtype=np.uint8)
