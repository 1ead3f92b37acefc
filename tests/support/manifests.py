"""Build artifact folders for tests, with any file contents (no torch, no training)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from modelfn.artifact import (
    ONNX_FILE,
    WEIGHTS_FILE,
    Architecture,
    DataFingerprint,
    ImagePreprocessing,
    Manifest,
    TensorSpec,
    TrainingRecord,
    describe_files,
    new_version,
    sha256_file,
    write_manifest,
)
from modelfn.reference_stats import ReferenceStats

CIFAR10_LABELS = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def write_artifact(
    root: Path,
    *,
    name: str = "cifar10-cnn",
    weights: bytes = b"weights",
    onnx: bytes = b"onnx-graph",
    labels: list[str] | None = None,
    created_at: datetime | None = None,
    external_data: bool = False,
    reference: ReferenceStats | None = None,
) -> Path:
    """Write `root/<name>/<version>/` with the two files and a valid manifest; return the folder.

    `external_data`: `onnx` (a real graph) is written as model.onnx + model.onnx.data, as
    export writes a graph over the contract's threshold. `reference`: the version's reference
    statistics, as training records them.
    """
    labels = labels or CIFAR10_LABELS
    staging = root / name / "staging"
    staging.mkdir(parents=True)
    (staging / WEIGHTS_FILE).write_bytes(weights)
    graph_files = [ONNX_FILE]
    if external_data:
        import onnx as onnx_lib

        from modelfn.onnx_graph import save_graph

        graph_files = save_graph(
            onnx_lib.load_model_from_string(onnx), staging / ONNX_FILE, threshold=0
        )
    else:
        (staging / ONNX_FILE).write_bytes(onnx)
    created = created_at or datetime.now(UTC)
    version = new_version(sha256_file(staging / WEIGHTS_FILE), created)
    folder = root / name / version
    staging.rename(folder)
    manifest = Manifest(
        name=name,
        version=version,
        task="image-classification",
        created_at=created,
        frameworks={"python": "3.11"},
        architecture=Architecture(module="cifar10_cnn", config={"width": 8}),
        inputs=[TensorSpec(name="input", datatype="FP32", shape=[-1, 3, 32, 32])],
        outputs=[TensorSpec(name="logits", datatype="FP32", shape=[-1, len(labels)])],
        labels=labels,
        preprocessing=ImagePreprocessing(
            height=32, width=32, mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26)
        ),
        metrics={"accuracy": 0.5},
        training=TrainingRecord(preset="test", epochs=1, seed=0, seconds=0.0),
        data=DataFingerprint(
            dataset="cifar10", sha256="0" * 64, files=["data_batch_1"], examples={"train": 1}
        ),
        files=describe_files(folder, [WEIGHTS_FILE, *graph_files]),
        reference=reference,
    )
    write_manifest(folder, manifest)
    return folder


def linear_graph(weight: object, bias: object) -> bytes:
    """A real ONNX classifier: input [N,3,32,32] -> Flatten -> MatMul weight -> Add bias -> logits.

    Built with onnx.helper, so function tests need neither torch nor training; tests compute the
    expected logits with numpy from the same weight and bias.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    labels = int(bias.shape[0])  # type: ignore[attr-defined]
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["input"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "weight"], ["scores"]),
            helper.make_node("Add", ["scores", "bias"], ["logits"]),
        ],
        "linear",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", labels])],
        initializer=[
            numpy_helper.from_array(weight, "weight"),
            numpy_helper.from_array(bias, "bias"),
        ],
    )
    # Opset 17 / IR 8: well inside what any onnxruntime >= 1.18 (the pyproject floor) loads.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def linear_onnx_graph(num_labels: int = 10, seed: int = 0) -> tuple[bytes, object, object]:
    """`linear_graph` with seeded random weights; returns (graph bytes, weight, bias)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    weight = rng.normal(0, 0.05, size=(3 * 32 * 32, num_labels)).astype(np.float32)
    bias = rng.normal(0, 0.1, size=(num_labels,)).astype(np.float32)
    return linear_graph(weight, bias), weight, bias
