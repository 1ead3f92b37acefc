"""What every classifier answers, images and texts alike: labels ranked by softmax probability."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from functions.errors import BadInput
from functions.tasks.runner import validate_parameters
from modelfn.artifact import ArtifactError, Manifest

DEFAULT_TOP_K = 3


class ScoredLabel(BaseModel):
    model_config = ConfigDict(extra="forbid")  # the OpenAPI schema: no other keys

    label: str
    score: float = Field(description="Softmax probability, 0..1.")


class Classification(BaseModel):
    """One input's answer: the best label and the `top_k` best, highest score first."""

    model_config = ConfigDict(extra="forbid")

    label: str
    score: float
    top_k: list[ScoredLabel]


class ClassificationParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Strict: true and "3" are refused rather than read as 1 and 3.
    top_k: int = Field(
        default=DEFAULT_TOP_K,
        strict=True,
        description="How many labels to return per input (default 3, or every label if fewer).",
        json_schema_extra={"minimum": 1},  # and at most the model's labels (parse_parameters)
    )


def parse_parameters(parameters: dict[str, Any], num_labels: int) -> ClassificationParameters:
    options: ClassificationParameters = validate_parameters(ClassificationParameters, parameters)
    if "top_k" not in parameters:  # the default, capped for models with fewer labels (IMDB: 2)
        return options.model_copy(update={"top_k": min(DEFAULT_TOP_K, num_labels)})
    if not 1 <= options.top_k <= num_labels:
        raise BadInput(f"parameters.top_k: {options.top_k} is out of range; use 1..{num_labels}")
    return options


def check_logits(manifest: Manifest, task: str) -> None:
    """ArtifactError unless the first output is logits [-1, number of labels]."""
    logits = manifest.outputs[0] if manifest.outputs else None
    if logits is None or logits.shape != [-1, len(manifest.labels)] or not manifest.labels:
        raise ArtifactError(
            f"{manifest.name}: {task} needs the first output to be logits [-1, {len(manifest.labels)}] "
            f"(one per label), manifest says {logits.shape if logits else 'no outputs'}"
        )


def softmax(logits: NDArray[Any]) -> NDArray[np.float64]:
    """Row-wise softmax in float64; subtracting the row max keeps exp() from overflowing."""
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=-1, keepdims=True), dtype=np.float64)


def postprocess(logits: NDArray[Any], labels: list[str], top_k: int) -> list[Classification]:
    """[N, num_labels] logits -> one Classification per row."""
    results = []
    for row in softmax(logits):
        best = np.argsort(-row, kind="stable")[:top_k]
        ranked = [ScoredLabel(label=labels[i], score=float(row[i])) for i in best]
        results.append(Classification(label=ranked[0].label, score=ranked[0].score, top_k=ranked))
    return results


def label_tensors(logits: NDArray[Any], labels: list[str]) -> dict[str, NDArray[Any]]:
    """OIP outputs of a text classifier: best label (BYTES), its score, every probability."""
    probabilities = softmax(logits)
    best = probabilities.argmax(axis=1)
    return {
        "label": np.array([labels[i].encode() for i in best], dtype=np.object_),
        "score": probabilities.max(axis=1).astype(np.float32),
        "probabilities": probabilities.astype(np.float32),
    }
