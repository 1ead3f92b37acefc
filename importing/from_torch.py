"""Import a torch module: build it with the user's factory, load the weights strictly, export it
with a dynamic batch axis, open the graph, and keep the module as the parity gate's reference.

The image classifier's graph takes "input" and gives "logits", as a trained one does; a tensor
model's inputs are the ones declared (names in forward's positional order) and its outputs are
"output" (or "output_0", "output_1", ... when forward returns a tuple).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from importing.errors import ImportRefused
from importing.export import export_module
from importing.image_scheme import ImageOptions, image_input_shape, image_preprocessing
from importing.parity import INTEGER_HIGH, Feeds
from importing.session import graph_specs, open_session, require_dynamic_batch
from importing.source import TORCH_PACKAGES, Built
from importing.tasks import check_classifier_graph
from importing.tensors import numpy_dtype, shape_text
from modelfn.artifact import ONNX_FILE, WEIGHTS_FILE, TensorSpec, sha256_file

IMAGE_INPUT, IMAGE_OUTPUT = "input", "logits"  # training/export_onnx.py's names for the same
EXPORT_SIZE = 2  # dynamic axes of the export example: the exporter specialises a size of 1


def build(
    reference: str,
    work: Path,
    *,
    weights: Path,
    factory_args: Mapping[str, Any],
    labels: list[str],
    image: ImageOptions | None,
    inputs: Sequence[TensorSpec] | None,
    opset: int | None,
    log: Callable[[str], None],
) -> Built:
    from safetensors.torch import save_model

    from importing.torch_module import build_module, load_weights, read_weights, source_file

    module = build_module(reference, factory_args)
    load_weights(module, read_weights(weights), str(weights))
    preprocessing = None
    if image is not None:  # image-classification
        preprocessing = image_preprocessing(image, None)
        declared = [
            TensorSpec(name=IMAGE_INPUT, datatype="FP32", shape=image_input_shape(preprocessing))
        ]
    else:
        declared = _declared_inputs(inputs)
    example = _export_example(declared)
    output_count = len(_outputs(_call(module, example), reference))
    output_names = (
        [IMAGE_OUTPUT] + [f"output_{i}" for i in range(1, output_count)]
        if image is not None
        else ["output"]
        if output_count == 1
        else [f"output_{i}" for i in range(output_count)]
    )
    exporter = export_module(
        module,
        example,
        work / ONNX_FILE,
        inputs=declared,
        output_names=output_names,
        opset=opset,
        log=log,
    )
    session = open_session(work / ONNX_FILE)
    graph_inputs, graph_outputs = graph_specs(session)
    require_dynamic_batch(graph_inputs)
    if image is not None:
        check_classifier_graph(graph_inputs, graph_outputs, labels)
    # save_model stores a tied tensor once and keeps buffers (BatchNorm statistics); never a pickle.
    save_model(module, str(work / WEIGHTS_FILE))
    sources = {weights.name: sha256_file(weights)}
    code = source_file(reference)
    if code is not None:
        sources[code.name] = sha256_file(code)

    def run_torch(feeds: Feeds) -> list[NDArray[Any]]:
        args = tuple(torch.from_numpy(feeds[spec.name]) for spec in declared)
        return [t.numpy() for t in _outputs(_call(module, args), reference)]

    return Built(
        session=session,
        inputs=graph_inputs,
        outputs=graph_outputs,
        preprocessing=preprocessing,
        reference=run_torch,
        source="torch-module",
        reference_text=reference,
        source_sha256=sources,
        version_file=WEIGHTS_FILE,
        packages=TORCH_PACKAGES,
        options={"exporter": exporter},
    )


def _declared_inputs(inputs: Sequence[TensorSpec] | None) -> list[TensorSpec]:
    if not inputs:
        raise ImportRefused(
            "a torch module imported as a tensor model needs its inputs declared, in forward's "
            "argument order: --input NAME:DATATYPE:SHAPE (e.g. x:FP32:-1,16; -1 = any size, "
            "the first axis is the batch)"
        )
    for spec in inputs:
        if not spec.shape or spec.shape[0] != -1:
            raise ImportRefused(
                f"input {spec.name!r} is declared {shape_text(spec.shape)}; its first axis is the "
                "batch and must be -1 (any size)"
            )
        if spec.datatype == "BYTES":
            raise ImportRefused(f"input {spec.name!r}: a graph input cannot be BYTES")
    return list(inputs)


def _export_example(inputs: list[TensorSpec]) -> tuple[torch.Tensor, ...]:
    rng = np.random.default_rng(0)
    tensors = []
    for spec in inputs:
        shape = [EXPORT_SIZE if d == -1 else d for d in spec.shape]
        dtype = numpy_dtype(spec)
        if dtype.kind == "f":
            value = rng.standard_normal(shape).astype(dtype)
        else:
            high = 2 if dtype.kind == "b" else INTEGER_HIGH
            value = rng.integers(0, high, shape).astype(dtype)
        tensors.append(torch.from_numpy(value))
    return tuple(tensors)


def _call(module: nn.Module, args: tuple[torch.Tensor, ...]) -> Any:
    with torch.no_grad():
        try:
            return module(*args)
        except Exception as exc:
            shapes = ", ".join(str(list(a.shape)) for a in args)
            raise ImportRefused(
                f"the module's forward fails on inputs of shape {shapes} ({type(exc).__name__}: "
                f"{exc}); check --image-size/--layout or the --input declarations"
            ) from exc


def _outputs(result: Any, reference: str) -> list[torch.Tensor]:
    if isinstance(result, torch.Tensor):
        return [result]
    if (
        isinstance(result, tuple | list)
        and result
        and all(isinstance(t, torch.Tensor) for t in result)
    ):
        return list(result)
    raise ImportRefused(
        f"{reference}'s forward returns a {type(result).__name__}; modelfn serves a tensor or a "
        "tuple of tensors: wrap the module to return those"
    )
