"""Imported artifacts for tests, built by hand: an ONNX graph made with onnx.helper (no torch),
a manifest with an ImportRecord and no architecture, training or data, as `modelfn import` writes.

Two graphs, each with a numpy twin for the expected answers:
- `image_graph`: an image classifier, input [N, 3, H, W] (or [N, H, W, 3]) -> Flatten -> MatMul
  -> Add -> "scores" [N, labels];
- `tensor_graph`: two named inputs, "input.1" FP32 [N, 4] (a torch-style name that is not an
  identifier) and "offset" INT64 [N], two outputs, "y" = input.1 @ W + offset [N, 3] and
  "norm" = sum of squares of input.1 [N].
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from modelfn.artifact import (
    EXAMPLES_FILE,
    ONNX_FILE,
    Examples,
    ImagePreprocessing,
    ImportRecord,
    Manifest,
    TensorSpec,
    describe_files,
    new_version,
    sha256_bytes,
    write_manifest,
)

TENSOR_W = np.arange(12, dtype=np.float32).reshape(4, 3) / 10 - 0.5  # [4, 3]


def write_imported(
    root: Path,
    *,
    name: str,
    task: str,
    onnx: bytes,
    inputs: list[TensorSpec],
    outputs: list[TensorSpec],
    labels: list[str] | None = None,
    preprocessing: ImagePreprocessing | None = None,
    examples: Examples | None = None,
    metrics: dict[str, float] | None = None,
) -> Path:
    """Write `root/<name>/<version>/` (model.onnx, examples.json if given, the manifest)."""
    digest = sha256_bytes(onnx)
    created = datetime.now(UTC)
    folder = root / name / new_version(digest, created)
    folder.mkdir(parents=True)
    (folder / ONNX_FILE).write_bytes(onnx)
    names = [ONNX_FILE]
    if examples is not None:
        (folder / EXAMPLES_FILE).write_bytes(examples.to_json())
        names.append(EXAMPLES_FILE)
    manifest = Manifest(
        name=name,
        version=folder.name,
        task=task,
        created_at=created,
        frameworks={"onnx": "test"},
        inputs=inputs,
        outputs=outputs,
        labels=labels or [],
        preprocessing=preprocessing,
        metrics=metrics or {},
        imported=ImportRecord(
            source="onnx",
            reference=ONNX_FILE,
            source_sha256={ONNX_FILE: digest},
            parity_inputs="none",
            tolerance=1e-4,
        ),
        files=describe_files(folder, names),
    )
    write_manifest(folder, manifest)
    return folder


def _model(graph: Any) -> bytes:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


# --- an image classifier ---------------------------------------------------------------------


@dataclass
class ImageGraph:
    onnx: bytes
    weight: NDArray[np.float32]  # [values per image, labels]
    bias: NDArray[np.float32]
    input_shape: list[int]

    def logits(self, batch: NDArray[np.float32]) -> NDArray[np.float64]:
        flat = batch.reshape(len(batch), -1).astype(np.float64)
        return flat @ self.weight.astype(np.float64) + self.bias


def image_graph(spec: ImagePreprocessing, labels: int, seed: int = 0) -> ImageGraph:
    """A linear classifier over the tensor the scheme makes, with seeded weights."""
    from onnx import TensorProto, helper, numpy_helper

    h, w = spec.height, spec.width
    shape = [-1, 3, h, w] if spec.layout == "NCHW" else [-1, h, w, 3]
    rng = np.random.default_rng(seed)
    weight = rng.normal(0, 0.05, (3 * h * w, labels)).astype(np.float32)
    bias = rng.normal(0, 0.1, (labels,)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["pixel_values"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "weight"], ["product"]),
            helper.make_node("Add", ["product", "bias"], ["scores"]),
        ],
        "imported_image",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["N", *shape[1:]])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", labels])],
        initializer=[
            numpy_helper.from_array(weight, "weight"),
            numpy_helper.from_array(bias, "bias"),
        ],
    )
    return ImageGraph(_model(graph), weight, bias, shape)


def write_image_classifier(
    root: Path,
    spec: ImagePreprocessing,
    labels: list[str],
    *,
    name: str = "imported-vision",
    examples: Examples | None = None,
) -> tuple[Path, ImageGraph]:
    graph = image_graph(spec, len(labels))
    folder = write_imported(
        root,
        name=name,
        task="image-classification",
        onnx=graph.onnx,
        inputs=[TensorSpec(name="pixel_values", datatype="FP32", shape=graph.input_shape)],
        outputs=[TensorSpec(name="scores", datatype="FP32", shape=[-1, len(labels)])],
        labels=labels,
        preprocessing=spec,
        examples=examples,
    )
    return folder, graph


# --- a tensor model --------------------------------------------------------------------------

TENSOR_INPUTS = [
    TensorSpec(name="input.1", datatype="FP32", shape=[-1, 4]),
    TensorSpec(name="offset", datatype="INT64", shape=[-1]),
]
TENSOR_OUTPUTS = [
    TensorSpec(name="y", datatype="FP32", shape=[-1, 3]),
    TensorSpec(name="norm", datatype="FP32", shape=[-1]),
]


def tensor_graph() -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input.1", "W"], ["product"]),
            helper.make_node("Cast", ["offset"], ["offset_f"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["offset_f", "axis1"], ["offset_col"]),
            helper.make_node("Add", ["product", "offset_col"], ["y"]),
            helper.make_node("Mul", ["input.1", "input.1"], ["squares"]),
            helper.make_node("ReduceSum", ["squares", "axis1"], ["norm"], keepdims=0),
        ],
        "imported_tensor",
        [
            helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("offset", TensorProto.INT64, ["N"]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("norm", TensorProto.FLOAT, ["N"]),
        ],
        initializer=[
            numpy_helper.from_array(TENSOR_W, "W"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        ],
    )
    return _model(graph)


def tensor_twin(x: NDArray[Any], offset: NDArray[Any]) -> dict[str, NDArray[np.float64]]:
    """The tensor graph's outputs, computed with numpy in float64."""
    x = np.asarray(x, dtype=np.float64)
    return {
        "y": x @ TENSOR_W.astype(np.float64) + np.asarray(offset, np.float64)[:, None],
        "norm": (x * x).sum(axis=1),
    }


def write_tensor_model(
    root: Path, *, name: str = "imported-tensor", examples: Examples | None = None
) -> Path:
    return write_imported(
        root,
        name=name,
        task="tensor",
        onnx=tensor_graph(),
        inputs=TENSOR_INPUTS,
        outputs=TENSOR_OUTPUTS,
        examples=examples,
    )
