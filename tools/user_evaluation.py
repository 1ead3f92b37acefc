"""`modelfn evaluate NAME --data PATH`: a classifier scored on the user's own labelled data,
through the Lambda handler.

An imported model arrives with no data set modelfn knows, so its figures come from the user's
data (tools/user_data.py reads it): an image folder per label for image-classification, a CSV of
texts and labels for text-classification. Each example goes through the function's friendly
`predict` route as the client sends it (the image file's own bytes, base64; the text as written),
in API Gateway events, to the same function app `modelfn evaluate` loads for a trained model
(tools/evaluate.py `served`). The figures are training's (`training.metrics`): accuracy, macro
and per-class precision, recall and F1.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelfn.artifact import Manifest
from modelfn.registry import load_registry
from modelfn.store import ArtifactStore
from tools.evaluate import Predict, PredictError, served
from tools.user_data import (
    LabelledImages,
    LabelledTexts,
    UserDataError,
    read_image_folder,
    read_text_csv,
)
from training.metrics import ClassificationReport, classification_report

SCORED_TASKS = ("image-classification", "text-classification")


@dataclass(frozen=True)
class UserEvaluation:
    manifest: Manifest
    data: str  # where the examples came from, in words (the folder or file and its sha256)
    report: ClassificationReport
    absent: list[str]  # the model's labels with no example in the data

    def figures(self) -> dict[str, float]:
        """As a manifest records them: accuracy, macro and per-class figures."""
        return self.report.figures(self.manifest.labels)

    def present_macro_f1(self) -> float:
        """Macro F1 over the labels the data has: the fair average when the data covers a few of
        many labels (training's macro counts an absent label's recall as 0)."""
        return float(self.report.f1[self.report.support > 0].mean())


def user_data_metrics(
    name: str,
    store: ArtifactStore,
    data: str | Path,
    *,
    alias: str = "latest",
    text_column: str = "text",
    label_column: str = "label",
) -> UserEvaluation:
    """Score version `alias` of classifier `name` on the labelled data at `data`.

    Raises UserDataError for data that does not fit the layout (before the version is loaded where
    the registry already tells the task) and for a model that is not a classifier.
    """
    task = load_registry().get(name).task
    if task not in SCORED_TASKS:
        raise UserDataError(
            f"{name} is a {task} model: its outputs carry no labels to score against; "
            f"evaluate --data scores {' and '.join(SCORED_TASKS)} models"
        )
    with served(name, store, alias=alias) as (manifest, predict):
        examples: LabelledImages | LabelledTexts
        if manifest.task == "image-classification":
            examples = read_image_folder(data, manifest.labels)
            predicted = _predict_images(predict, examples)
        else:
            examples = read_text_csv(
                data, manifest.labels, text_column=text_column, label_column=label_column
            )
            predicted = _predict_texts(predict, examples)
    report = classification_report(examples.labels, predicted, len(manifest.labels))
    absent = [label for label, n in zip(manifest.labels, report.support, strict=True) if n == 0]
    return UserEvaluation(manifest, examples.describe(), report, absent)


def _predict_images(predict: Predict, data: LabelledImages) -> np.ndarray:
    from functions.limits import MAX_TOTAL_PIXELS

    pixels = [w * h for w, h in data.sizes]

    def inputs(indices: list[int]) -> list[str]:
        return [base64.b64encode(data.read(i)).decode("ascii") for i in indices]

    return _labels(predict, data.label_names, pixels, MAX_TOTAL_PIXELS, inputs, data.files)


def _predict_texts(predict: Predict, data: LabelledTexts) -> np.ndarray:
    from functions.limits import MAX_TOTAL_TOKENS

    # Each token is at least one byte, so a request within MAX_TOTAL_TOKENS bytes of text is
    # within the function's token budget whatever the tokenizer does.
    sizes = [len(t.encode()) for t in data.texts]
    names = [f"{data.source} row {row}" for row in data.rows]
    return _labels(
        predict,
        data.label_names,
        sizes,
        MAX_TOTAL_TOKENS,
        lambda indices: [data.texts[i] for i in indices],
        names,
    )


def _labels(
    predict: Predict,
    label_names: list[str],
    sizes: list[int],
    budget: int,
    inputs: Callable[[list[int]], list[Any]],
    where: list[Any],
) -> np.ndarray:
    """Predicted label indices, in requests the function accepts; an example the function refuses
    is named with the function's own reason."""
    predicted: list[int] = []
    for indices in requests(sizes, budget):
        try:
            outputs = predict(inputs(indices), {})
        except PredictError as exc:
            if exc.status >= 500 or len(indices) == 1:
                raise UserDataError(
                    f"{where[indices[0]]}"
                    + (
                        f" (and the {len(indices) - 1} examples sent with it)"
                        if len(indices) > 1
                        else ""
                    )
                    + f": the function answered {exc.status}: {exc.body}"
                ) from exc
            # One example spoiled the request: send them one by one to name it.
            outputs = [out for i in indices for out in _one(predict, inputs([i]), where[i])]
        predicted += [label_names.index(out["label"]) for out in outputs]
    return np.asarray(predicted, np.int64)


def _one(predict: Predict, item: list[Any], where: Any) -> list[dict[str, Any]]:
    try:
        return predict(item, {})
    except PredictError as exc:
        raise UserDataError(f"{where}: the function answered {exc.status}: {exc.body}") from exc


def requests(sizes: list[int], budget: int) -> Iterator[list[int]]:
    """Consecutive indices grouped as the function takes them: at most MAX_BATCH inputs and
    `budget` in total size (pixels, text bytes); an example over the budget goes alone, and the
    function's answer says why it is refused."""
    from functions.limits import MAX_BATCH

    batch: list[int] = []
    total = 0
    for index, size in enumerate(sizes):
        if batch and (len(batch) == MAX_BATCH or total + size > budget):
            yield batch
            batch, total = [], 0
        batch.append(index)
        total += size
    if batch:
        yield batch
