"""The test split an edge bundle is scored on, handed to the edge exporter in the runner's input
forms (`edge.parity.TestData`): a trained model's, read with training's loaders; an imported
image classifier's, read from the user's own labelled folder (tools/user_data.py).

It lives on the top floor because it joins floors that stand side by side: training knows how
to read the data sets, edge/ how a device feeds a bundle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.parity import TestData
from modelfn.artifact import Manifest
from modelfn.registry import ModelEntry, RegistryError
from tools.user_data import UserDataError, read_image_folder

# An imported model has one labelled folder, not a training and a test split: a share of it is
# held out to calibrate int8 on and never scored, as a trained CNN calibrates on training images
# and is scored on test images. 100 images set the activation ranges as well as 800 do here
# (MinMax calibration: the extremes of a few batches).
CALIBRATION_SHARE = 5  # one image in 5, evenly spaced in the reader's order (label, file name)
CALIBRATION_MAX = 100


def load_test_data(
    entry: ModelEntry, data_dir: str | Path | None, limit: int | None = None
) -> TestData:
    """A trained model's test split (and, for the CNN, its training images to calibrate int8 on);
    `data_dir` as `modelfn train --data` takes it; `limit` keeps the first test examples."""
    from training.recipe import load_data

    if entry.imported:
        raise RegistryError(
            f"{entry.name} was imported: modelfn holds no test split for it; export-edge scores "
            "it on your labelled data (modelfn export-edge NAME --data PATH, user_test_data)"
        )
    data = load_data(entry, data_dir)
    split = f"the {entry.trained().dataset} test split"
    if entry.task == "image-classification":
        images = data.test.images[:limit]
        return TestData(
            images=images.transpose(0, 2, 3, 1),
            labels=data.test.labels[:limit],
            calibration=data.train.images.transpose(0, 2, 3, 1),
            source=f"{split} ({len(images)} images); int8 calibrated on "
            f"{len(data.train.images)} training images",
        )
    if entry.task == "text-classification":
        texts = data.test.texts[:limit]
        return TestData(
            texts=texts, labels=data.test.labels[:limit], source=f"{split} ({len(texts)} texts)"
        )
    sentences = data.test[:limit]
    return TestData(sentences=sentences, source=f"{split} ({len(sentences)} sentences)")


def user_test_data(manifest: Manifest, path: str | Path, limit: int | None = None) -> TestData:
    """An imported image classifier's test images and int8 calibration images, both from the
    user's folder (`PATH/<label>/*.png|jpg|jpeg`) and disjoint; `limit` keeps the first test
    images. Decoded as the bundle's runner decodes a file on a device."""
    from edge.standalone_runner import load_image

    if manifest.task != "image-classification":
        raise UserDataError(
            f"{manifest.name} is a {manifest.task} model: export-edge --data reads a folder of "
            "labelled images, for imported image classifiers; an edge bundle's runner takes "
            "images or texts, and a tensor graph has no pre-processing for it to run"
        )
    images = read_image_folder(path, manifest.labels)
    count = len(images.files)
    if count < 2:
        raise UserDataError(
            f"{images.root}: one image; export-edge needs at least 2 (one to calibrate int8 on, "
            "one to score), and a few dozen per label for figures worth reading"
        )
    held = min(max(1, count // CALIBRATION_SHARE), CALIBRATION_MAX)
    # Evenly spaced over the label-sorted order: every label gives calibration images in
    # proportion to its examples.
    calibrate = sorted({int(i) for i in np.linspace(0, count - 1, held).round()})
    held_out = set(calibrate)
    scored = [i for i in range(count) if i not in held_out][:limit]
    pixels = {i: load_image(images.read(i)) for i in sorted(held_out | set(scored))}
    return TestData(
        images=[pixels[i] for i in scored],
        labels=images.labels[scored],
        calibration=[pixels[i] for i in calibrate],
        source=f"your data: {images.describe(name_only=True)}; {len(scored)} scored, {len(calibrate)} held out "
        "to calibrate int8 (evenly spaced over the labels, never scored)",
    )
