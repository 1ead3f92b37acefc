"""The test split an edge bundle is scored on, handed to the edge exporter in the runner's input
forms (`edge.parity.TestData`): a trained model's, read with training's loaders; an imported
model's, read from the user's own data (tools/user_data.py): a labelled image folder, or a CSV of
texts with or without labels.

It lives on the top floor because it joins floors that stand side by side: training knows how
to read the data sets, edge/ how a device feeds a bundle.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edge.parity import TestData
from modelfn.artifact import Manifest, TokenizerPreprocessing, read_manifest, read_verified
from modelfn.registry import ModelEntry, RegistryError
from modelfn.store import ArtifactStore, fetch_artifact
from modelfn.tokenizer_file import TokenizerFile
from tools.user_data import (
    UserDataError,
    read_image_folder,
    read_text_csv,
    read_unlabelled_csv,
)
from training.errors import TrainingError

# An imported model has one labelled folder, not a training and a test split: a share of it is
# held out to calibrate int8 on and never scored, as a trained CNN calibrates on training images
# and is scored on test images. 100 images set the activation ranges as well as 800 do here
# (MinMax calibration: the extremes of a few batches).
CALIBRATION_SHARE = 5  # one image in 5, evenly spaced in the reader's order (label, file name)
CALIBRATION_MAX = 100

# What a bad --data (or a missing data set) raises: the commands print it and exit 2.
DATA_ERRORS = (TrainingError, FileNotFoundError, UserDataError)


@contextmanager
def version_with_test_data(
    store: ArtifactStore,
    entry: ModelEntry,
    ref: str,
    data_dir: str | Path | None,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    prefix: str = "modelfn-",
) -> Iterator[tuple[Manifest, Path, TestData]]:
    """`entry`'s version or alias `ref`, fetched into a temporary folder for the block, with the
    test data its int8 graph is scored on (export-edge, quantize): a trained model's data set, read
    before the fetch so a missing one fails in a second; an imported model's `data_dir`, read
    against the fetched version (its labels, its tokenizer). Raises one of DATA_ERRORS for data
    that cannot be read."""
    data = None if entry.imported else load_test_data(entry, data_dir)
    with tempfile.TemporaryDirectory(prefix=prefix) as cache:
        manifest, folder = fetch_artifact(store, entry.name, ref, Path(cache))
        if data is None:
            assert data_dir is not None  # test_data_problem asks an imported model for --data
            data = user_test_data(
                folder,
                data_dir,
                text_column=text_column or "text",
                label_column=label_column or "label",
            )
        yield manifest, folder, data


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
            f"{len(data.train.images)} training images (a fifth held out to choose per-channel "
            "or per-tensor weight scales)",
        )
    if entry.task == "text-classification":
        texts = data.test.texts[:limit]
        return TestData(
            texts=texts, labels=data.test.labels[:limit], source=f"{split} ({len(texts)} texts)"
        )
    sentences = data.test[:limit]
    return TestData(sentences=sentences, source=f"{split} ({len(sentences)} sentences)")


def user_test_data(
    folder: Path,
    path: str | Path,
    limit: int | None = None,
    *,
    text_column: str = "text",
    label_column: str = "label",
) -> TestData:
    """An imported model's test data from the user's `path`, for the artifact in `folder`;
    `limit` keeps the first test examples.

    - image-classification: `PATH/<label>/*.png|jpg|jpeg`, test images and int8 calibration
      images both from it and disjoint, decoded as the bundle's runner decodes a file;
    - text-classification: a CSV of texts and label names (int8 is dynamic: no calibration);
    - feature-extraction: a CSV with a text column; labels, if any, are not read.

    Text is checked against the version's tokenizer here: without truncation a text longer than
    the model takes is refused by row, before anything is quantized.
    """
    manifest = read_manifest(folder)
    if manifest.task == "image-classification":
        return _user_images(manifest, path, limit)
    if manifest.task == "text-classification" and isinstance(
        manifest.preprocessing, TokenizerPreprocessing
    ):
        labelled = read_text_csv(
            path, manifest.labels, text_column=text_column, label_column=label_column
        )
        texts, rows = labelled.texts[:limit], labelled.rows[:limit]
        _check_lengths(folder, manifest, texts, rows, labelled.source)
        return TestData(
            texts=texts,
            labels=labelled.labels[:limit],
            source=f"your data: {labelled.describe(name_only=True)}; {len(texts)} scored",
        )
    if manifest.task == "feature-extraction":
        unlabelled = read_unlabelled_csv(path, text_column=text_column)
        texts, rows = unlabelled.texts[:limit], unlabelled.rows[:limit]
        _check_lengths(folder, manifest, texts, rows, unlabelled.source)
        return TestData(
            texts=texts,
            source=f"your data: {unlabelled.describe(name_only=True)}; {len(texts)} embedded "
            "by both graphs",
        )
    raise UserDataError(
        f"{manifest.name} is a {manifest.task} model: export-edge --data reads your data for "
        "imported image classifiers (a folder per label), Hugging Face text classifiers (a CSV "
        "of texts and labels) and feature extractors (a CSV of texts); an edge bundle's runner "
        "takes images or texts, and a tensor graph has no pre-processing for it to run"
    )


def _user_images(manifest: Manifest, path: str | Path, limit: int | None) -> TestData:
    from edge.standalone_runner import load_image

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


def _check_lengths(
    folder: Path, manifest: Manifest, texts: list[str], rows: list[int], source: Path
) -> None:
    """Refuse, by row, a text the model cannot take whole when it was imported without
    truncation (the function answers such a text with a 400, the runner with an error)."""
    pre = manifest.preprocessing
    assert isinstance(pre, TokenizerPreprocessing)
    if pre.truncation:
        return
    tokenizer = TokenizerFile(pre, read_verified(folder, manifest, pre.file))
    lengths = tokenizer.encode(texts).lengths
    over = [(row, n) for row, n in zip(rows, lengths, strict=True) if n > pre.max_length]
    if over:
        shown = ", ".join(f"row {row} ({n} tokens)" for row, n in over[:5])
        more = f" and {len(over) - 5} more" if len(over) > 5 else ""
        raise UserDataError(
            f"{source}: {shown}{more} over {manifest.name}'s maximum of {pre.max_length} tokens; "
            "it was imported without truncation (modelfn import --no-truncation), so a device "
            "refuses such a text: shorten or remove those rows"
        )
