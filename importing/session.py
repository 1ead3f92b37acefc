"""The graph as serving will run it: an onnxruntime CPU session, and the tensors it declares.

Loading the graph in a session is how an import finds out whether onnxruntime can run every
operator (a kernel missing for an op, an opset or a type only shows there), and the session's
inputs and outputs are what the function will be fed, so the manifest's TensorSpecs come from it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from importing.errors import ImportRefused
from importing.tensors import ORT, shape_text
from modelfn.artifact import TensorSpec

# What onnxruntime says when it has no kernel or no schema for a node (onnxruntime 1.32).
_NO_KERNEL = re.compile(
    r"Could not find an implementation for (\w+)\((\d+)\) node with name '([^']*)'"
)
_NO_SCHEMA = re.compile(r"No Op registered for (\w+) with domain_version of (\d+)")
_UNKNOWN_DOMAIN_OP = re.compile(r"([\w.]+):(\w+)\(-?\d+\) is not a registered function/op")

EXPORT_HINT = (
    "torch.onnx.export(model, args, dynamo=True, dynamic_shapes=({0: torch.export.Dim('batch')},)) "
    "or, with the legacy exporter, dynamic_axes={'INPUT': {0: 'batch'}}"
)


def open_session(path: Path) -> Any:
    """An onnxruntime CPU session of the graph at `path`; ImportRefused naming what it cannot run."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: unused-initialiser warnings are noise here
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ImportRefused(_why_not(str(exc), ort.__version__)) from exc


def _why_not(message: str, version: str) -> str:
    runtime = f"onnxruntime {version} (the CPU provider the function runs)"
    fix = (
        "re-export with another opset (--opset for a torch module), replace the operator in "
        "the model, or serve the model with runtime torch instead"
    )
    if found := _NO_KERNEL.search(message):
        op, opset, node = found.groups()
        return (
            f"operator {op} (opset {opset}) at node {node!r} has no kernel in {runtime} for the "
            f"types it is given; {fix}"
        )
    if found := _NO_SCHEMA.search(message):
        op, opset = found.groups()
        return f"operator {op} is not an ONNX operator of opset {opset} that {runtime} knows; {fix}"
    if found := _UNKNOWN_DOMAIN_OP.search(message):
        domain, op = found.groups()
        return (
            f"operator {op} of domain {domain} is a custom operator {runtime} does not have; {fix}"
        )
    first = message.strip().splitlines()[0] if message.strip() else "no message"
    return f"{runtime} cannot load the graph: {first}; {fix}"


def graph_specs(session: Any) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The session's inputs and outputs as TensorSpecs (dynamic dimensions -1)."""
    return (
        [_spec(arg, "input") for arg in session.get_inputs()],
        [_spec(arg, "output") for arg in session.get_outputs()],
    )


def _spec(arg: Any, kind: str) -> TensorSpec:
    datatype = ORT.get(arg.type)
    if datatype is None:
        raise ImportRefused(
            f"graph {kind} {arg.name!r} is {arg.type}; modelfn serves tensors of "
            f"{', '.join(ORT)}: cast it inside the model before exporting"
        )
    shape = [d if isinstance(d, int) and d >= 0 else -1 for d in (arg.shape or [])]
    return TensorSpec(name=arg.name, datatype=datatype, shape=shape)  # type: ignore[arg-type]


def require_dynamic_batch(inputs: list[TensorSpec]) -> None:
    """Every input's first axis must be dynamic: the function batches requests along it."""
    for spec in inputs:
        if not spec.shape:
            raise ImportRefused(
                f"graph input {spec.name!r} is a scalar; modelfn batches along each input's first "
                f"axis, so give it one: re-export with a batch axis ({EXPORT_HINT})"
            )
        if spec.shape[0] != -1:
            raise ImportRefused(
                f"graph input {spec.name!r} has a fixed batch dimension {shape_text(spec.shape)}: "
                f"the function sends batches of any size along the first axis; re-export it "
                f"with a dynamic batch axis: {EXPORT_HINT.replace('INPUT', spec.name)}"
            )
