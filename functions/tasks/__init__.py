"""Task adapters: what turns friendly JSON into graph inputs and graph outputs into answers.

`manifest.task` picks the adapter from `ADAPTERS`. An adapter is any object (here, a module of
plain functions) with the `TaskAdapter` functions; a new task (text classification, language
modelling) is one module plus one entry here, and `TaskOutput` becomes a union of their outputs.
"""

from __future__ import annotations

from typing import Any, Protocol

from functions.tasks import image_classification
from functions.tasks.image_classification import Classification, Runner
from modelfn.artifact import ArtifactError, Manifest

TaskOutput = Classification


class TaskAdapter(Protocol):
    def check_manifest(self, manifest: Manifest) -> None:
        """Raise ArtifactError unless this adapter can drive the graph the manifest describes."""
        ...

    def predict(
        self, run: Runner, manifest: Manifest, inputs: list[Any], parameters: dict[str, Any]
    ) -> list[TaskOutput]:
        """Validate, pre-process, `run` the graph and post-process; one output per input."""
        ...


ADAPTERS: dict[str, TaskAdapter] = {
    "image-classification": image_classification,
}


def adapter_for(task: str) -> TaskAdapter:
    try:
        return ADAPTERS[task]
    except KeyError:
        raise ArtifactError(
            f"task {task!r} has no serving adapter; known tasks: {', '.join(sorted(ADAPTERS))}"
        ) from None


__all__ = ["ADAPTERS", "Runner", "TaskAdapter", "TaskOutput", "adapter_for"]
