"""What every task's trainer hands back to the pipeline, which turns it into an artifact."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from modelfn.artifact import Example, ImagePreprocessing, TextPreprocessing
from modelfn.reference_stats import ReferenceStats
from training.errors import TrainingError
from training.export_onnx import GraphTensor
from training.metrics import ClassificationReport


@dataclass(frozen=True)
class Mistake:
    """One wrong test prediction, for the report: which, what, how sure."""

    index: int  # position in the test split
    true: str
    predicted: str
    confidence: float  # softmax probability of the predicted label
    text: str | None = None  # a review's opening words
    image: np.ndarray | None = None  # uint8 [3, H, W], for a thumbnail


@dataclass
class Evaluation:
    """What the report shows beyond the metrics (training/report.py draws it)."""

    # One row per epoch: "epoch", "seconds", "lr" and the task's losses and metrics.
    history: list[dict[str, float]] = field(default_factory=list)
    classes: ClassificationReport | None = None  # classifiers, on the test split
    mistakes: list[Mistake] = field(default_factory=list)  # the most confident wrong answers
    # Language models: (sentence length range, sentences, tokens, perplexity) on the test split.
    by_length: list[tuple[str, int, int, float]] = field(default_factory=list)


@dataclass
class TrainedModel:
    model: nn.Module
    labels: list[str]  # class names in logit order; empty for a language model
    preprocessing: ImagePreprocessing | TextPreprocessing
    inputs: list[GraphTensor]  # the ONNX graph's signature, in the module's argument order
    outputs: list[GraphTensor]
    metrics: dict[str, float]
    seconds: float  # wall time of the training loop
    export_example: tuple[torch.Tensor, ...]  # one tensor per input; named dims at least 2
    parity_feeds: dict[str, np.ndarray]  # real held-out inputs by graph input name
    files: dict[str, bytes] = field(default_factory=dict)  # more files of the version (vocabulary)
    evaluation: Evaluation = field(default_factory=Evaluation)
    # Real held-out inputs for the version's examples.json (training/examples.py).
    examples: list[Example] = field(default_factory=list)
    # The held-out inputs' and answers' statistics, for `modelfn drift` (training/reference.py).
    reference: ReferenceStats | None = None

    def architecture_config(self) -> dict[str, Any]:
        """The model's constructor arguments, as the manifest records them: every architecture
        keeps its config dataclass as `.config` (architectures/)."""
        config = self.model.config
        if not dataclasses.is_dataclass(config) or isinstance(config, type):
            raise TrainingError(
                f"{type(self.model).__name__}.config is not its constructor-arguments dataclass; "
                "the artifact could not rebuild the model"
            )
        return dataclasses.asdict(config)


def most_confident_mistakes(
    probabilities: np.ndarray, truth: np.ndarray, labels: list[str], count: int = 12, **extra: Any
) -> list[Mistake]:
    """The `count` wrong predictions with the highest predicted probability, most confident first.

    `extra` maps a Mistake field (`text`, `image`) to a sequence indexed like the test split.
    """
    predicted = probabilities.argmax(1)
    wrong = np.flatnonzero(predicted != truth)
    ranked = wrong[np.argsort(-probabilities[wrong, predicted[wrong]], kind="stable")][:count]
    return [
        Mistake(
            index=int(i),
            true=labels[int(truth[i])],
            predicted=labels[int(predicted[i])],
            confidence=float(probabilities[i, predicted[i]]),
            **{key: values[i] for key, values in extra.items()},
        )
        for i in ranked
    ]
