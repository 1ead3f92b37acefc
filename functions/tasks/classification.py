"""What every classifier answers, images and texts alike: labels ranked by score, the score as the
manifest's `scores` says (softmax probability by default; sigmoid for multi-label; the logits)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from functions.errors import BadInput
from functions.tasks.runner import validate_parameters
from modelfn.artifact import ArtifactError, Manifest, Scores

DEFAULT_TOP_K = 3


class ScoredLabel(BaseModel):
    model_config = ConfigDict(extra="forbid")  # the OpenAPI schema: no other keys

    label: str
    score: float = Field(
        description="The label's score: its softmax probability, 0..1 (most models); its own "
        "sigmoid probability, 0..1, for multi-label models; or its logit (the model card says "
        "which)."
    )


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


def sigmoid(logits: NDArray[Any]) -> NDArray[np.float64]:
    """Element-wise logistic in float64, written so that neither tail overflows exp()."""
    x = logits.astype(np.float64)
    e = np.exp(-np.abs(x))
    return np.asarray(np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)), dtype=np.float64)


def scored(logits: NDArray[Any], scores: Scores) -> NDArray[np.float64]:
    """[N, num_labels] logits -> the scores a classifier answers with."""
    if scores == "sigmoid":
        return sigmoid(logits)
    if scores == "logits":
        return logits.astype(np.float64)
    return softmax(logits)


def postprocess(
    logits: NDArray[Any], labels: list[str], top_k: int, scores: Scores = "softmax"
) -> list[Classification]:
    """[N, num_labels] logits -> one Classification per row, labels ranked by score."""
    results = []
    for row in scored(logits, scores):
        best = np.argsort(-row, kind="stable")[:top_k]
        ranked = [ScoredLabel(label=labels[i], score=float(row[i])) for i in best]
        results.append(Classification(label=ranked[0].label, score=ranked[0].score, top_k=ranked))
    return results


def label_tensors(
    logits: NDArray[Any], labels: list[str], scores: Scores = "softmax"
) -> dict[str, NDArray[Any]]:
    """OIP outputs of a text classifier: best label (BYTES), its score, every label's score
    (`probabilities`: softmax or sigmoid probabilities, or the logits where scores = logits)."""
    probabilities = scored(logits, scores)
    best = probabilities.argmax(axis=1)
    return {
        "label": np.array([labels[i].encode() for i in best], dtype=np.object_),
        "score": probabilities.max(axis=1).astype(np.float32),
        "probabilities": probabilities.astype(np.float32),
    }
