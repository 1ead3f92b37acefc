"""The parity gate refuses a graph that does not answer as its reference, naming the output, the
input and the difference, and a graph that loses the batch axis; it writes nothing then."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from importing import ImportRefused, ParityRefused, import_model
from importing.parity import BATCH, Case, _batches, generated_cases
from modelfn.artifact import TensorSpec, verify_artifact
from tests.support.import_sources import nothing_written


def test_a_graph_that_differs_from_torch_is_refused_with_the_output_input_and_difference(
    tmp_path: Path,
) -> None:
    # Counting adds how many times forward ran: the export bakes one count into the graph.
    weights = tmp_path / "counting.safetensors"
    from safetensors.torch import save_model

    from tests.support.small_models import counting

    save_model(counting(), str(weights))
    out = tmp_path / "out"
    with pytest.raises(ParityRefused) as caught:
        import_model(
            "tests.support.small_models:counting",
            name="counting",
            task="tensor",
            out_dir=out,
            weights=weights,
            inputs=[TensorSpec(name="x", datatype="FP32", shape=[-1, 16])],
        )
    message = str(caught.value)
    assert re.search(
        r"output 'output' differs on generated input \d \(batch 1\) by \d+(\.\d+)? "
        r"\(tolerance 0\.0001\)",
        message,
    ), message
    assert nothing_written(out)


def test_a_tolerance_below_the_difference_refuses_a_faithful_export(tmp_path: Path) -> None:
    from safetensors.torch import save_model

    from tests.support.small_models import regressor

    weights = tmp_path / "regressor.safetensors"
    save_model(regressor(), str(weights))
    kwargs = {
        "name": "regressor",
        "task": "tensor",
        "weights": weights,
        "inputs": [
            TensorSpec(name="x", datatype="FP32", shape=[-1, 16]),
            TensorSpec(name="ids", datatype="INT64", shape=[-1, 4]),
        ],
    }
    folder = import_model("tests.support.small_models:regressor", out_dir=tmp_path / "ok", **kwargs)  # type: ignore[arg-type]
    record = verify_artifact(folder).imported
    assert record is not None and record.parity_inputs == "generated"
    assert set(record.parity) == {"output_0", "output_1"}
    worst = max(record.parity.values())
    if worst == 0:
        pytest.skip("onnxruntime matched torch exactly here; no tolerance can sit below that")
    with pytest.raises(ParityRefused, match="differs on generated input"):
        import_model(
            "tests.support.small_models:regressor",
            out_dir=tmp_path / "refused",
            tolerance=worst / 2,
            **kwargs,  # type: ignore[arg-type]
        )
    assert nothing_written(tmp_path / "refused")


def test_an_output_without_the_batch_axis_is_refused(tmp_path: Path) -> None:
    # y = ReduceSum(x, axis 0, keepdims): [N, 4] -> [1, 4], whatever the batch.
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [0])
    node = helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=1)
    graph = helper.make_graph(
        [node],
        "sum-over-batch",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        initializer=[axes],
    )
    source = tmp_path / "sum.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(source))
    out = tmp_path / "out"
    with pytest.raises(ImportRefused) as caught:
        import_model(source, name="summed", task="tensor", out_dir=out)
    assert f"output 'y' on a batch of {BATCH}" in str(caught.value)
    assert "has shape [1, 4], expected [3, 4]" in str(caught.value)
    assert nothing_written(out)


def test_batches_take_different_rows_in_turn() -> None:
    same = [Case(f"c{i}", {"x": np.zeros((1, 2))}) for i in range(4)]
    assert _batches(same) == [[0, 1, 2], [3, 0, 1]]
    ragged = [Case("a", {"x": np.zeros((1, 2))}), Case("b", {"x": np.zeros((1, 5))})]
    assert _batches(ragged) == [[0, 0, 0], [1, 1, 1]]


def test_generated_inputs_have_the_declared_shapes_and_types() -> None:
    specs = [
        TensorSpec(name="x", datatype="FP32", shape=[-1, -1, 3]),
        TensorSpec(name="ids", datatype="INT64", shape=[-1, 4]),
        TensorSpec(name="mask", datatype="BOOL", shape=[-1, 4]),
    ]
    cases = generated_cases(specs)
    assert len(cases) == 3 and cases[0].name == "generated input 1"
    feeds = cases[0].feeds
    assert feeds["x"].shape == (1, 5, 3) and feeds["x"].dtype == np.float32
    assert feeds["ids"].dtype == np.int64 and 0 <= feeds["ids"].min() and feeds["ids"].max() < 10
    assert feeds["mask"].dtype == np.bool_
    assert not np.array_equal(cases[0].feeds["x"], cases[1].feeds["x"])
