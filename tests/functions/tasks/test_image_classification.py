"""Pre- and post-processing of the image-classification adapter, on real CIFAR-10 pixels."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from mangum import Mangum
from PIL import Image, ImageFilter

from functions.errors import BadInput
from functions.limits import MAX_PIXELS, MAX_TOTAL_PIXELS
from functions.tasks import classification, load_task
from functions.tasks import image_classification as ic
from modelfn.artifact import ArtifactError, ImagePreprocessing
from tests.functions.conftest import MODEL, TinyModel, call, encode_image, random_pixels

CIFAR_TEST_BATCH = (
    Path(__file__).resolve().parents[4] / "shared/data/cifar-10-batches-py/test_batch"
)
SPEC = ImagePreprocessing(height=32, width=32, mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26))


def cifar_test_images(n: int) -> tuple[np.ndarray, list[int], list[str]]:
    """The first `n` images of the real CIFAR-10 test batch as [n, 32, 32, 3] uint8, and labels."""
    if not CIFAR_TEST_BATCH.is_file():
        pytest.skip(f"CIFAR-10 test batch not found at {CIFAR_TEST_BATCH}")
    from training.data.cifar10 import load_cifar10

    data = load_cifar10(CIFAR_TEST_BATCH.parent)
    pixels = data.test.images[:n].transpose(0, 2, 3, 1)  # NCHW on disk -> HxWx3 per image
    return pixels, data.test.labels[:n].tolist(), data.label_names


def to_pixels(item: object, index: int, spec: ImagePreprocessing) -> np.ndarray:
    """One input item through the adapter's own steps -> [height, width, 3] uint8 pixels."""
    where = f"inputs[{index}]"
    return ic.fit_pixels(ic.open_item(item, where, spec), spec, where)


def test_a_real_cifar_png_decodes_to_its_exact_pixels_and_normalises_like_training(
    tiny: TinyModel,
) -> None:
    pixels, _, _ = cifar_test_images(4)
    spec = tiny.manifest.preprocessing
    batch = ic.preprocess([encode_image(p) for p in pixels], spec)
    assert batch.dtype == np.float32 and batch.shape == (4, 3, 32, 32)
    np.testing.assert_allclose(batch, tiny.normalise(pixels), atol=1e-6)
    np.testing.assert_array_equal(ic.preprocess([p.tolist() for p in pixels], spec), batch)


def test_a_real_cifar_image_through_the_handler_matches_numpy(
    handler: Mangum, published: TinyModel
) -> None:
    pixels, _, names = cifar_test_images(2)
    assert names == published.manifest.labels  # the official class order, as the manifest has it
    reply = call(
        handler, "POST", f"/models/{MODEL}/predict", {"inputs": [encode_image(p) for p in pixels]}
    )
    assert reply.status == 200
    want = published.probabilities(pixels)
    for output, row in zip(reply.json()["outputs"], want, strict=True):
        assert output["label"] == names[int(row.argmax())]
        assert output["score"] == pytest.approx(row.max(), abs=1e-5)


def test_jpeg_decodes_close_to_the_original_pixels() -> None:
    # JPEG is lossy; a smooth image (as photos are) comes back within a few levels per pixel.
    pixels = np.asarray(Image.fromarray(random_pixels(1)[0]).filter(ImageFilter.GaussianBlur(2)))
    decoded = to_pixels(encode_image(pixels, fmt="JPEG"), 0, SPEC)
    assert np.abs(decoded.astype(int) - pixels.astype(int)).mean() < 4


def test_exif_rotation_is_applied() -> None:
    wide = np.zeros((32, 64, 3), dtype=np.uint8)
    wide[:, :32] = 255  # left half white
    image = Image.fromarray(wide)
    exif = image.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif, quality=95)
    spec = ImagePreprocessing(height=64, width=32, mean=(0, 0, 0), std=(1, 1, 1))
    upright = to_pixels(base64.b64encode(buffer.getvalue()).decode(), 0, spec)
    assert upright.shape == (64, 32, 3)
    assert upright[:32].mean() > 200 and upright[32:].mean() < 50  # white on top after rotating


def test_softmax_is_stable_for_large_logits() -> None:
    probabilities = classification.softmax(np.array([[1000.0, 1000.0, -1000.0]], dtype=np.float32))
    assert probabilities.tolist() == [[0.5, 0.5, 0.0]]


def test_postprocess_ranks_labels_and_keeps_ties_in_label_order() -> None:
    (result,) = classification.postprocess(
        np.array([[0.0, 2.0, 2.0, 1.0]]), ["a", "b", "c", "d"], top_k=3
    )
    assert [t.label for t in result.top_k] == ["b", "c", "d"]
    assert result.label == "b"


def test_check_manifest_refuses_logits_that_do_not_match_the_labels(tiny: TinyModel) -> None:
    manifest = tiny.manifest.model_copy(update={"labels": tiny.manifest.labels[:9]})
    with pytest.raises(ArtifactError, match=r"logits \[-1, 9\]"):
        ic.check_manifest(manifest)


def test_the_task_picks_the_adapter(tiny: TinyModel) -> None:
    assert isinstance(load_task(tiny.manifest, tiny.folder), ic.ImageClassifier)
    unknown = tiny.manifest.model_copy(update={"task": "object-detection"})
    with pytest.raises(ArtifactError, match="task 'object-detection' has no serving adapter"):
        load_task(unknown, tiny.folder)


def test_a_pixel_array_of_the_graph_size_is_not_resampled_but_rounded_to_whole_levels() -> None:
    # Training only saw whole 0..255 levels: fractional values are rounded, at any array size.
    whole = random_pixels(1, seed=3)[0]
    offsets = np.random.default_rng(4).uniform(-0.45, 0.45, whole.shape)
    fractional = np.clip(whole + offsets, 0, 255)
    pixels = to_pixels(fractional.tolist(), 0, SPEC)
    assert pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels, whole)
    np.testing.assert_array_equal(
        ic.preprocess([fractional.tolist()], SPEC), ic.normalise(whole[None], SPEC)
    )


def test_fractional_arrays_round_the_same_at_the_graph_size_and_when_resized() -> None:
    whole = np.full((64, 64, 3), 100, dtype=np.uint8)
    fractional = (whole + 0.4).tolist()
    assert to_pixels(fractional, 0, SPEC).tolist() == np.full((32, 32, 3), 100).tolist()
    assert to_pixels((whole[:32, :32] + 0.4).tolist(), 0, SPEC).tolist() == (
        np.full((32, 32, 3), 100).tolist()
    )


def test_an_item_names_its_index() -> None:
    with pytest.raises(BadInput, match=r"inputs\[2\]"):
        ic.preprocess([[[[0, 0, 0]]], [[[0, 0, 0]]], "%%%"], SPEC)


def blank_image(width: int, height: int, fmt: str) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height)).save(buffer, format=fmt)  # zeros compress to a few KB
    return base64.b64encode(buffer.getvalue()).decode()


def test_the_total_decoded_pixels_are_refused_before_any_image_is_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Three PNGs of the largest allowed size: each is under MAX_PIXELS, together over the total.
    big = blank_image(4096, 4096, "PNG")
    assert 4096 * 4096 <= MAX_PIXELS < 3 * 4096 * 4096 and 3 * 4096 * 4096 > MAX_TOTAL_PIXELS

    def no_decoding(image: Image.Image, where: str) -> Image.Image:
        raise AssertionError(f"{where} was decoded before the total was checked")

    monkeypatch.setattr(ic, "decoded_rgb", no_decoding)
    with pytest.raises(BadInput, match=f"over the limit of {MAX_TOTAL_PIXELS} per request"):
        ic.preprocess([encode_image(random_pixels(1)[0]), big, big, big], SPEC)


def test_a_large_jpeg_decodes_at_a_reduced_scale_and_counts_at_that_size() -> None:
    # draft() picks the 1/8 scale for a 32x32 target: 4096x4096 decodes as 512x512.
    big = blank_image(4096, 4096, "JPEG")
    assert ic.decoded_pixels(ic.open_item(big, "inputs[0]", SPEC)) == 512 * 512
    batch = ic.preprocess([big] * 3, SPEC)  # 3 x 16.8 MP declared, 3 x 0.26 MP decoded
    assert batch.shape == (3, 3, 32, 32)
