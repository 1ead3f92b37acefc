"""Export an imported torch module to the artifact's ONNX graph with a dynamic batch axis.

The dynamo exporter (torch.export) is the one used; the legacy TorchScript exporter only when it
fails, said in the log and recorded in the import's options, because tracing follows the one path
the example takes through `forward` and the parity gate is then the only check of the others.
This mirrors training/export_onnx.py, which floor 3 cannot import; the two differ in what they
are told (a user's module and its declared tensors, not a task's GraphTensors). Both write the
graph through `modelfn.onnx_graph.save_graph`: one file, or `model.onnx` + `model.onnx.data`
past the contract's size threshold. The exporters write into a scratch folder (the legacy one
names external data files after tensors), which save_graph turns into the contract's files.
"""

from __future__ import annotations

import io
import logging
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, redirect_stderr
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from importing.errors import ImportRefused
from modelfn.artifact import TensorSpec
from modelfn.onnx_graph import save_graph

Exporter = Literal["dynamo", "torchscript"]
MAX_DIM = 65536  # upper bound of every dynamic dimension the exporter is told about


def export_module(
    module: nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    *,
    inputs: list[TensorSpec],
    output_names: list[str],
    opset: int | None,
    log: Callable[[str], None],
    shared_axes: Mapping[int, tuple[str, int]] | None = None,
) -> Exporter:
    """Write `module` to `path` (with `path`.data beside it past the contract's threshold); every
    -1 of `inputs` becomes a dynamic axis. Returns the exporter.

    Every dynamic axis of `example` must be at least 2: the exporter specialises a size of 1.
    `shared_axes` maps an axis to a (name, largest size) that every input's -1 on that axis
    shares (a text model's token tensors are one sequence long); other axes are each their own.
    """
    module.eval()
    # The batch axis is one dimension shared by all inputs (they are rows of the same requests);
    # other dynamic axes are each their own unless `shared_axes` says otherwise.
    batch = torch.export.Dim("batch", min=1, max=MAX_DIM)
    shared = {
        axis: torch.export.Dim(name, min=1, max=largest)
        for axis, (name, largest) in (shared_axes or {}).items()
    }

    def dim(spec: TensorSpec, axis: int) -> Any:
        if axis == 0:
            return batch
        return shared.get(axis) or torch.export.Dim(_axis_name(spec, axis), max=MAX_DIM)

    dynamic_shapes = tuple(
        {axis: dim(spec, axis) for axis, size in enumerate(spec.shape) if size == -1}
        for spec in inputs
    )
    with tempfile.TemporaryDirectory(prefix="modelfn-export-") as scratch:
        exported = Path(scratch) / path.name
        exporter = _export(
            module, example, exported, inputs, output_names, dynamic_shapes, opset, log, shared_axes
        )
        import onnx

        save_graph(onnx.load(str(exported)), path)
    return exporter


def _export(
    module: nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    inputs: list[TensorSpec],
    output_names: list[str],
    dynamic_shapes: tuple[dict[int, Any], ...],
    opset: int | None,
    log: Callable[[str], None],
    shared_axes: Mapping[int, tuple[str, int]] | None,
) -> Exporter:
    """The exporters' own files at `path`: dynamo's, else the legacy TorchScript exporter's."""
    names = [spec.name for spec in inputs]
    _forget_cached_rnn_kernels()
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(
                module,
                example,
                dynamo=True,
                input_names=names,
                output_names=output_names,
                dynamic_shapes=dynamic_shapes,
                opset_version=opset,
                verbose=False,
            )
        if program is None:
            raise RuntimeError("torch.onnx.export(dynamo=True) returned no program")
        # External data: a graph over 2 GiB cannot be one protobuf message.
        program.save(str(path), external_data=True)
        return "dynamo"
    except Exception as dynamo_exc:  # noqa: BLE001 - torch.export fails in many exception types
        first = _first_line(dynamo_exc)
        log(
            f"warning: the dynamo exporter failed ({first}); exporting with the legacy "
            "TorchScript exporter instead, which traces the one path the example takes through "
            "forward (the parity gate checks the result)"
        )
        dynamo_error = first
    shared_names = {axis: name for axis, (name, _) in (shared_axes or {}).items()}
    try:
        with _quiet_exporter(), torch.no_grad():
            torch.onnx.export(
                module,
                example,
                str(path),
                dynamo=False,
                input_names=names,
                output_names=output_names,
                dynamic_axes={
                    spec.name: {
                        a: shared_names.get(a, _axis_name(spec, a))
                        for a, s in enumerate(spec.shape)
                        if s == -1
                    }
                    for spec in inputs
                }
                | {name: {0: "batch"} for name in output_names},
                opset_version=opset,
            )
    except Exception as exc:
        raise ImportRefused(
            f"torch.onnx.export cannot export the module: dynamo: {dynamo_error}; TorchScript: "
            f"{_first_line(exc)}. Make forward exportable (no data-dependent Python control "
            "flow, tensors in and out) or export it yourself and import the .onnx file"
        ) from exc
    return "torchscript"


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter logs that torchvision's ops are unregistered, torch.export prints the partial
    FX graph to stderr when it fails (torch/export/_trace.py), and both warn about their own
    internals: pages of noise in `modelfn import` output. What failed is said once, from the
    exporter's error."""
    loggers = [logging.getLogger("torch")] + [
        log
        for name, log in logging.root.manager.loggerDict.items()
        if name.startswith("torch.") and isinstance(log, logging.Logger)
    ]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.setLevel(level)


def _forget_cached_rnn_kernels() -> None:
    """Let this export see the exporter's own LSTM/GRU kernels, as a process's first export does
    (training/export_onnx.py explains it: torch 2.13's op dispatch caches otherwise make a second
    export unroll an RNN over the example's time steps)."""
    for op in (torch.ops.aten.lstm.input, torch.ops.aten.gru.input):
        op._dispatch_cache.clear()


def _axis_name(spec: TensorSpec, axis: int) -> str:
    """A dynamic axis's symbol: `batch` for every first axis, `<input>_<axis>` for the others
    (torch.export wants identifiers; a tensor's name may hold any character)."""
    return "batch" if axis == 0 else re.sub(r"\W", "_", f"{spec.name}_{axis}")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the exporter colours its messages


def _first_line(exc: BaseException) -> str:
    """The innermost cause's first line: the exporter wraps torch.export's own error, which says
    what in forward could not be captured (e.g. control flow on a tensor's value)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = _ANSI.sub("", str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"
