"""Users' own labelled data for tests, made from real CIFAR-10 test images: a folder per label,
as people keep photos (PNG and JPEG, upper- and lower-case suffixes, sizes other than 32x32)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from tests.support.text_models import SHARED_DATA

CIFAR_TEST = SHARED_DATA / "cifar-10-batches-py"


def cifar_test_images(count: int) -> tuple[NDArray[np.uint8], NDArray[np.int64], list[str]]:
    """`count` CIFAR-10 test images (uint8 [N, 32, 32, 3]), labels and label names, taken from
    each class in turn (the shared sample's test batch runs in long single-class stretches)."""
    if not (CIFAR_TEST / "test_batch").is_file():
        pytest.skip(f"CIFAR-10 not found in {CIFAR_TEST}")
    from training.data.cifar10 import load_cifar10

    data = load_cifar10(CIFAR_TEST)
    by_class = [
        np.flatnonzero(data.test.labels == c).tolist() for c in range(len(data.label_names))
    ]
    picks: list[int] = []
    while len(picks) < count and any(by_class):
        picks += [indices.pop(0) for indices in by_class if indices][: count - len(picks)]
    return (
        data.test.images[picks].transpose(0, 2, 3, 1),
        data.test.labels[picks],
        list(data.label_names),
    )


def write_label_folders(
    root: Path,
    images: NDArray[np.uint8],
    labels: NDArray[np.int64],
    names: list[str],
    *,
    sizes: tuple[tuple[int, int], ...] = ((32, 32),),
) -> list[Path]:
    """`root/<label>/<i>.png` for each image (every third a `.JPG`, quality 95), resized in turn
    to each of `sizes` (width, height); returns the files in the order written."""
    from PIL import Image

    files = []
    for i, (pixels, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / names[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(pixels)
        size = sizes[i % len(sizes)]
        if image.size != size:
            image = image.resize(size, Image.Resampling.BICUBIC)
        if i % 3 == 2:
            path = folder / f"{i:04d}.JPG"
            image.save(path, format="JPEG", quality=95)
        else:
            path = folder / f"{i:04d}.png"
            image.save(path, format="PNG")
        files.append(path)
    return files
