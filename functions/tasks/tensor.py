"""The tensor task: an imported graph served as it is, named tensors in and named tensors out.

A model with no image or text scheme (`manifest.preprocessing` None) has nothing to decode or
tokenise: its Open Inference Protocol signature is the graph's inputs and outputs as the manifest
lists them, tensors pass straight to the graph and every output (or the requested ones) comes
back. The friendly route takes one JSON object per example, mapping each graph input's name to
that example's values as a nested list (the tensor without its batch axis):

    {"inputs": [{"features": [0.1, 0.2, 0.3]}, {"features": [0.4, 0.5, 0.6]}]}

stacks the examples along a new first axis (the batch), runs the graph once, and answers one
object per example mapping each output's name to that example's row, as a nested list. Every
problem is a BadInput naming the example and the tensor (`inputs[1].features: ...`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import ConfigDict, RootModel

from functions.errors import BadInput
from functions.limits import MAX_BATCH
from functions.tasks.runner import NoParameters, Runner, validate_parameters
from functions.tensors import as_datatype
from modelfn.artifact import ArtifactError, Manifest, TensorSpec

# What a value that numpy could not read as numbers was, by numpy's dtype kind.
NOT_NUMBERS = {
    "U": "text",
    "S": "bytes",
    "O": "null, an object, or an integer too large for any number type",
}


class TensorOutputs(RootModel[dict[str, Any]]):
    """One example's answer: each output's name -> that example's row of it, as a nested list."""

    model_config = ConfigDict(json_schema_extra={"additionalProperties": {"type": "array"}})


def check_manifest(manifest: Manifest) -> None:
    """Raise ArtifactError unless the manifest describes a graph of numeric tensors."""
    if manifest.preprocessing is not None:
        raise ArtifactError(
            f"{manifest.name}: the tensor task passes tensors through as they are; its manifest "
            f"declares {manifest.preprocessing.kind} preprocessing, which belongs to another task"
        )
    if not manifest.inputs or not manifest.outputs:
        raise ArtifactError(
            f"{manifest.name}: the tensor task needs the graph's inputs and outputs"
        )
    strings = [t.name for t in manifest.inputs + manifest.outputs if t.datatype == "BYTES"]
    if strings:
        raise ArtifactError(
            f"{manifest.name}: the tensor task serves numeric tensors; {strings} are BYTES"
        )


def tensor_path(where: str, name: str) -> str:
    """`inputs[1].features`, or `inputs[1]["input.1"]` for a name that is not an identifier."""
    return f"{where}.{name}" if name.isidentifier() else f"{where}[{json.dumps(name)}]"


@dataclass(frozen=True)
class TensorModel:
    manifest: Manifest

    def predict(
        self, run: Runner, inputs: list[Any], parameters: dict[str, Any]
    ) -> list[TensorOutputs]:
        """One TensorOutputs per example of `inputs`, in order."""
        validate_parameters(NoParameters, parameters)
        if len(inputs) > MAX_BATCH:
            raise BadInput(
                f"inputs: {len(inputs)} examples, at most {MAX_BATCH} per request; split the batch"
            )
        examples = [self.example(item, f"inputs[{i}]") for i, item in enumerate(inputs)]
        batch = {spec.name: stack(examples, spec) for spec in self.manifest.inputs}
        outputs = run(batch)
        return [
            TensorOutputs(
                {
                    spec.name: self.row(outputs[spec.name], spec, i, len(inputs))
                    for spec in self.manifest.outputs
                }
            )
            for i in range(len(inputs))
        ]

    def example(self, item: Any, where: str) -> dict[str, NDArray[Any]]:
        """One example's object -> its tensors by input name, each checked against the graph's."""
        names = [spec.name for spec in self.manifest.inputs]
        if not isinstance(item, dict):
            raise BadInput(
                f"{where}: expected an object mapping the model's inputs {names} to nested lists "
                f"of one example's values, got {type(item).__name__}"
            )
        unknown = [key for key in item if key not in names]
        if unknown:
            raise BadInput(f"{where}: the model has no input {unknown[0]!r}; its inputs: {names}")
        missing = [name for name in names if name not in item]
        if missing:
            raise BadInput(
                f"{where}: missing {missing[0]!r}; each example gives every input: {names}"
            )
        return {
            spec.name: example_tensor(item[spec.name], spec, tensor_path(where, spec.name))
            for spec in self.manifest.inputs
        }

    def row(self, array: NDArray[Any], spec: TensorSpec, index: int, examples: int) -> Any:
        if array.ndim == 0 or array.shape[0] != examples:
            raise BadInput(
                f"output {spec.name!r} has shape {list(array.shape)}, not one row per example "
                f"({examples}), so the friendly route cannot split it; ask for it over the Open "
                f"Inference Protocol: POST /v2/models/{self.manifest.name}/infer"
            )
        return array[index].tolist()

    def signature(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        return list(self.manifest.inputs), list(self.manifest.outputs)

    def infer(
        self, run: Runner, tensors: dict[str, NDArray[Any]], parameters: dict[str, Any]
    ) -> dict[str, NDArray[Any]]:
        # The graph's tensors say everything; request parameters have nothing to change.
        return run(tensors)


def example_tensor(value: Any, spec: TensorSpec, where: str) -> NDArray[Any]:
    """One example's nested list -> an array of the input's datatype and per-example shape."""
    try:
        array = np.asarray(value)
    except ValueError:
        raise BadInput(
            f"{where}: a ragged nested list; every row of a tensor has the same length"
        ) from None
    if array.dtype.kind in NOT_NUMBERS:
        raise BadInput(
            f"{where}: every value must be a number ({spec.datatype}); found "
            f"{NOT_NUMBERS[array.dtype.kind]}"
        )
    one = spec.shape[1:]  # the graph's shape without its batch axis
    shape = list(array.shape)
    if len(shape) != len(one) or any(s not in (-1, d) for d, s in zip(shape, one, strict=True)):
        raise BadInput(
            f"{where}: shape {shape} does not fit one example of the model's input, {one} "
            f"(-1: any size; the input is {spec.shape}, its first axis the batch)"
        )
    return as_datatype(array, spec.datatype, where)


def stack(examples: list[dict[str, NDArray[Any]]], spec: TensorSpec) -> NDArray[Any]:
    """The examples' tensors of one input as one batch, along a new first axis."""
    arrays = [example[spec.name] for example in examples]
    for i, array in enumerate(arrays[1:], start=1):
        if array.shape != arrays[0].shape:
            raise BadInput(
                f"{tensor_path(f'inputs[{i}]', spec.name)}: shape {list(array.shape)}, but "
                f"inputs[0] has {list(arrays[0].shape)}; the examples of one request share each "
                "tensor's shape (send others in another request)"
            )
    if spec.shape and spec.shape[0] not in (-1, len(arrays)):
        raise BadInput(
            f"inputs: {len(arrays)} examples, but the model's input {spec.name!r} takes batches of "
            f"exactly {spec.shape[0]} (shape {spec.shape}); send {spec.shape[0]} per request"
        )
    return np.stack(arrays)


# --- examples.json ------------------------------------------------------------------------------


def example_inputs(text: str) -> dict[str, Any]:
    """An example of examples.json -> one example's named tensors, as the friendly route takes it.

    Its `input` is JSON text of either form: one example's named tensors (`{"x": [0.1, 0.2]}`),
    or an Open Inference Protocol request body for it (`{"inputs": [{"name": "x", "shape":
    [1, 2], "datatype": "FP32", "data": [0.1, 0.2]}]}`, which any OIP client can send as it
    is), whose batch axis of 1 is dropped. Raises ValueError, KeyError or TypeError if it is neither.
    """
    body = json.loads(text)
    if not isinstance(body, dict):
        raise TypeError(f"an example is a JSON object, not {type(body).__name__}")
    tensors = body.get("inputs")
    if not (isinstance(tensors, list) and tensors and all(isinstance(t, dict) for t in tensors)):
        return body  # named tensors (a tensor's value is never a list of objects)
    named = {}
    for tensor in tensors:
        shape = tensor["shape"]
        if not shape or shape[0] != 1:
            raise ValueError(f"{tensor['name']!r}: an example is one row, batch axis 1: {shape}")
        named[str(tensor["name"])] = np.asarray(tensor["data"]).reshape(shape)[0].tolist()
    return named


# --- the friendly messages' JSON schemas, per model (functions/openapi.py shows them) -----------

# An OIP datatype -> the JSON schema of one value.
VALUE_SCHEMAS: dict[str, dict[str, Any]] = {
    "BOOL": {"type": "boolean"},
    "FP32": {"type": "number"},
    "FP16": {"type": "number"},
    "FP64": {"type": "number"},
}


def example_schema(spec: TensorSpec) -> dict[str, Any]:
    """One example of `spec` (its shape without the batch axis) as nested JSON arrays."""
    schema = VALUE_SCHEMAS.get(spec.datatype, {"type": "integer"})
    for size in reversed(spec.shape[1:]):
        schema = {"type": "array", "items": schema}
        if size >= 0:
            schema |= {"minItems": size, "maxItems": size}
    return schema


def named_tensors_schema(specs: list[TensorSpec], what: str) -> dict[str, Any]:
    """An object holding one example of every tensor of `specs`, by name."""
    return {
        "type": "object",
        "description": what,
        "properties": {
            spec.name: {**example_schema(spec), "description": f"{spec.datatype} {spec.shape}"}
            for spec in specs
        },
        "required": [spec.name for spec in specs],
        "additionalProperties": False,
    }


def load(manifest: Manifest, folder: Path) -> TensorModel:
    check_manifest(manifest)
    return TensorModel(manifest)
