"""Export a trained module to the artifact's ONNX graph and prove onnxruntime agrees with torch.

Each task declares its graph as `GraphTensor`s: names, datatypes and dimensions, where a string
dimension is dynamic and the same string means the same size across tensors (the "batch" of the
LSTM's tokens and of its state). The graph is written by `modelfn.onnx_graph.save_graph`: one
file, or `model.onnx` + `model.onnx.data` past the contract's size threshold.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from modelfn.artifact import TensorSpec
from modelfn.onnx_graph import save_graph
from training.errors import TrainingError

# The image classifier's graph: "input" float32 [batch, 3, H, W] -> "logits" [batch, classes].
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
MAX_DIM = 65536  # upper bound of every dynamic dimension the exporter is told about


class ParityError(TrainingError):
    """onnxruntime and torch disagree on the same inputs by more than the tolerance."""


@dataclass(frozen=True)
class GraphTensor:
    """One graph input or output: `dims` holds sizes and names of dynamic dimensions."""

    name: str
    datatype: str  # an OIP datatype: FP32, INT64, ...
    dims: tuple[int | str, ...]

    def spec(self) -> TensorSpec:
        """The manifest's view: dynamic dimensions are -1."""
        shape = [d if isinstance(d, int) else -1 for d in self.dims]
        return TensorSpec(name=self.name, datatype=self.datatype, shape=shape)  # type: ignore[arg-type]


def export_onnx(
    model: nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    *,
    inputs: list[GraphTensor],
    outputs: list[GraphTensor],
) -> list[str]:
    """Write `model` (in eval mode) to `path`; `example` holds one tensor per input, in order.
    Returns the names of the files written beside each other: the graph, and its external data
    where the graph is over the contract's threshold.

    Every example dimension that `inputs` names must be at least 2: the exporter specialises a
    dimension of size 1 to a constant.
    """
    model.eval()
    dims = {
        name: torch.export.Dim(name, min=1, max=MAX_DIM)
        for tensor in inputs
        for name in tensor.dims
        if isinstance(name, str)
    }
    dynamic_shapes = tuple(
        {axis: dims[d] for axis, d in enumerate(tensor.dims) if isinstance(d, str)}
        for tensor in inputs
    )
    _forget_cached_rnn_kernels()
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    # The exporter warns that torchvision's ops are unregistered and about its own deprecated
    # internals: noise in `modelfn train` output that says nothing about this model.
    exporter_log.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # FutureWarning: the exporter's deprecated internals; UserWarning: LSTM weights
            # "assigned during export" and shared axis names, both about the exporter itself.
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            program = torch.onnx.export(
                model,
                example,
                dynamo=True,
                input_names=[t.name for t in inputs],
                output_names=[t.name for t in outputs],
                dynamic_shapes=dynamic_shapes,
                verbose=False,
            )
    finally:
        exporter_log.setLevel(level)
    if program is None:
        raise RuntimeError("torch.onnx.export(dynamo=True) returned no program")
    import onnx

    # Saved with external data first: a graph over 2 GiB cannot be one protobuf message, and
    # the exporter's file names are its own; save_graph writes the contract's.
    with tempfile.TemporaryDirectory(prefix="modelfn-export-") as scratch:
        exported = Path(scratch) / path.name
        program.save(str(exported), external_data=True)
        graph = onnx.load(str(exported))
    declare_output_shapes(graph, outputs)
    return save_graph(graph, path)


def _forget_cached_rnn_kernels() -> None:
    """Let this export see the exporter's own LSTM/GRU kernels, as the first export does.

    With dynamic shapes, torch 2.13's exporter swaps in a while-loop LSTM/GRU (any sequence
    length) through the ops' `py_kernels` and restores them afterwards, but the ops' dispatch
    caches keep what the last call resolved. The second export in a process then unrolls the
    LSTM over the example's time steps and the graph only takes that length (seen here: the
    same model exported twice, `time` became 3; the parity check on 35 tokens refused it).
    """
    for op in (torch.ops.aten.lstm.input, torch.ops.aten.gru.input):
        op._dispatch_cache.clear()


def declare_output_shapes(graph: Any, outputs: list[GraphTensor]) -> None:
    """Write the declared dimensions onto the graph's outputs, and drop inferred inner shapes.

    torch 2.13's exporter infers the LSTM's output as [batch, <example's time>, ...], a fixed time
    dimension (the graph computes any length; parity is checked on another one) that onnxruntime
    then warns about on every call. The declaration is what the graph computes, so it replaces
    the inferred one; inner shape annotations are optional and onnxruntime infers its own.
    """
    del graph.graph.value_info[:]
    by_name = {tensor.name: tensor for tensor in outputs}
    for value in graph.graph.output:
        tensor = by_name[value.name]
        shape = value.type.tensor_type.shape
        shape.ClearField("dim")
        for d in tensor.dims:
            dim = shape.dim.add()
            if isinstance(d, int):
                dim.dim_value = d
            else:
                dim.dim_param = d


def onnx_max_abs_diff(onnx_path: Path, model: nn.Module, feeds: dict[str, np.ndarray]) -> float:
    """Largest |torch - onnxruntime| over every output for the same `feeds` (real data).

    `feeds` maps the graph's input names, in the module's argument order, to arrays.
    """
    import onnxruntime as ort  # only needed here; keeps `import training.export_onnx` cheap

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ort_outputs = session.run(None, feeds)
    model.eval()
    with torch.no_grad():
        torch_outputs = model(*(torch.from_numpy(v) for v in feeds.values()))
    if isinstance(torch_outputs, torch.Tensor):
        torch_outputs = (torch_outputs,)
    worst = 0.0
    for spec, ort_out, torch_out in zip(
        session.get_outputs(), ort_outputs, torch_outputs, strict=True
    ):
        expected = torch_out.numpy()
        if ort_out.shape != expected.shape:
            raise ParityError(
                f"{onnx_path}: output {spec.name} has shape {ort_out.shape}, torch gives {expected.shape}"
            )
        worst = max(worst, float(np.max(np.abs(ort_out - expected))))
    return worst


def check_parity(
    onnx_path: Path, model: nn.Module, feeds: dict[str, np.ndarray], tolerance: float
) -> float:
    """Raise ParityError if the graph and the module differ by more than `tolerance`; return the diff."""
    diff = onnx_max_abs_diff(onnx_path, model, feeds)
    if not diff <= tolerance:  # `not <=` also catches NaN
        rows = len(next(iter(feeds.values())))
        raise ParityError(
            f"{onnx_path}: onnxruntime and torch outputs differ by up to {diff:.3g} on {rows} "
            f"real inputs (tolerance {tolerance:g}); do not publish this graph"
        )
    return diff
