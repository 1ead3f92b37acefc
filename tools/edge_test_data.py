"""The test split an edge bundle is scored on, read with training's loaders and handed to the
edge exporter in the runner's input forms (`edge.parity.TestData`).

It lives on the top floor because it joins two floors that stand side by side: training knows
how to read the data sets, edge/ how a device feeds a bundle.
"""

from __future__ import annotations

from pathlib import Path

from edge.parity import TestData
from modelfn.registry import ModelEntry, RegistryError


def load_test_data(
    entry: ModelEntry, data_dir: str | Path | None, limit: int | None = None
) -> TestData:
    """`entry`'s test split (and, for the CNN, its training images to calibrate int8 on);
    `data_dir` as `modelfn train --data` takes it; `limit` keeps the first test examples."""
    from training.recipe import load_data

    if entry.imported:
        # The parity report scores fp32 and int8 on a labelled test split; an imported model's
        # would be the user's own data (an image folder per label), which export-edge does not
        # read yet. Say so instead of pretending.
        raise RegistryError(
            f"{entry.name} was imported: export-edge scores its int8 graph on a labelled test "
            "split, and reading your own data for that is not built yet; serve it through the "
            "function (modelfn serve, make synth)"
        )
    data = load_data(entry, data_dir)
    if entry.task == "image-classification":
        return TestData(
            images=data.test.images[:limit].transpose(0, 2, 3, 1),
            labels=data.test.labels[:limit],
            calibration=data.train.images.transpose(0, 2, 3, 1),
        )
    if entry.task == "text-classification":
        return TestData(texts=data.test.texts[:limit], labels=data.test.labels[:limit])
    return TestData(sentences=data.test[:limit])
