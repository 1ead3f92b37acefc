"""Task adapters: what turns friendly JSON and OIP tensors into graph inputs, and back.

`manifest.task` picks the adapter's `load` from `ADAPTERS`. `load(manifest, folder)` checks that
the manifest describes a graph the adapter can drive, reads what the task needs from the
version's files (a text task's vocabulary or tokenizer.json) and returns a `Task` bound to that version; the
function builds it once at init. A new task is one module plus one entry here, and `TaskOutput`
is the union of their friendly outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from numpy.typing import NDArray

from functions.tasks import (
    feature_extraction,
    image_classification,
    language_model,
    tensor,
    text_classification,
)
from functions.tasks.classification import Classification
from functions.tasks.feature_extraction import Embedding
from functions.tasks.language_model import Continuation, NextWords, TextScore
from functions.tasks.runner import Runner
from functions.tasks.tensor import TensorOutputs
from modelfn.artifact import ArtifactError, Manifest, TensorSpec

TaskOutput = Classification | NextWords | TextScore | Continuation | Embedding | TensorOutputs


class Task(Protocol):
    """One task adapter bound to one loaded version."""

    def predict(self, run: Runner, inputs: list[Any], parameters: dict[str, Any]) -> list[Any]:
        """The friendly route: validate, pre-process, run, post-process; one output per input."""
        ...

    def signature(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        """The Open Inference Protocol inputs and outputs (what model metadata lists)."""
        ...

    def infer(
        self, run: Runner, tensors: dict[str, NDArray[Any]], parameters: dict[str, Any]
    ) -> dict[str, NDArray[Any]]:
        """OIP inference on tensors already checked against `signature()`; outputs by name.

        BYTES tensors are numpy object arrays of `bytes`, in and out.
        """
        ...


Loader = Callable[[Manifest, Path], Task]

ADAPTERS: dict[str, Loader] = {
    "image-classification": image_classification.load,
    "text-classification": text_classification.load,
    "language-modeling": language_model.load,
    "feature-extraction": feature_extraction.load,
    "tensor": tensor.load,
}


def load_task(manifest: Manifest, folder: Path) -> Task:
    """The adapter of `manifest.task`, bound to the version in `folder`; ArtifactError if none fits."""
    try:
        loader = ADAPTERS[manifest.task]
    except KeyError:
        raise ArtifactError(
            f"task {manifest.task!r} has no serving adapter; known tasks: {', '.join(sorted(ADAPTERS))}"
        ) from None
    return loader(manifest, folder)


__all__ = ["ADAPTERS", "Runner", "Task", "TaskOutput", "load_task"]
