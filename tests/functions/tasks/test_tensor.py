"""The tensor task's pieces: manifests it refuses, batches it cannot stack, examples.json forms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from functions.errors import BadInput
from functions.tasks import load_task
from functions.tasks import tensor as task
from modelfn.artifact import ArtifactError, ImagePreprocessing, TensorSpec, read_manifest
from tests.support.imported import write_tensor_model

DYNAMIC = TensorSpec(name="tokens", datatype="INT64", shape=[-1, -1])


@pytest.fixture
def model(tmp_path: Path) -> task.TensorModel:
    adapter = load_task(read_manifest(write_tensor_model(tmp_path)), tmp_path)
    assert isinstance(adapter, task.TensorModel)
    return adapter


def test_manifests_the_task_cannot_serve_are_refused(model: task.TensorModel) -> None:
    manifest = model.manifest
    text = TensorSpec(name="text", datatype="BYTES", shape=[-1])
    with pytest.raises(ArtifactError, match=r"numeric tensors; \['text'\] are BYTES"):
        task.check_manifest(manifest.model_copy(update={"inputs": [text]}))
    with pytest.raises(ArtifactError, match="needs the graph's inputs and outputs"):
        task.check_manifest(manifest.model_copy(update={"outputs": []}))
    image = ImagePreprocessing(height=2, width=2, mean=(0, 0, 0), std=(1, 1, 1))
    with pytest.raises(ArtifactError, match="declares image preprocessing"):
        task.check_manifest(manifest.model_copy(update={"preprocessing": image}))


def test_examples_of_one_request_must_share_each_tensors_shape() -> None:
    first, second = {"tokens": np.zeros(3, np.int64)}, {"tokens": np.zeros(5, np.int64)}
    with pytest.raises(
        BadInput, match=r"inputs\[1\]\.tokens: shape \[5\], but inputs\[0\] has \[3\]"
    ):
        task.stack([first, second], DYNAMIC)
    assert task.stack([first, first], DYNAMIC).shape == (2, 3)


def test_a_fixed_batch_size_is_enforced() -> None:
    fixed = TensorSpec(name="x", datatype="FP32", shape=[1, 2])
    one = {"x": np.zeros(2, np.float32)}
    assert task.stack([one], fixed).shape == (1, 2)
    with pytest.raises(BadInput, match="takes batches of exactly 1"):
        task.stack([one, one], fixed)


def test_an_output_with_no_row_per_example_is_a_400_pointing_at_oip(
    model: task.TensorModel,
) -> None:
    def scalar_norm(feeds: dict[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
        return {"y": np.zeros((2, 3), np.float32), "norm": np.float32(1.0) * np.ones(())}

    good = {"input.1": [0.0] * 4, "offset": 1}
    with pytest.raises(BadInput, match=r"output 'norm' has shape \[\].*/v2/models/imported-tensor"):
        model.predict(scalar_norm, [good, good], {})


def test_an_example_is_one_examples_named_tensors_or_an_oip_body() -> None:
    named = {"x": [[1, 2], [3, 4]], "n": 3}
    assert task.example_inputs(json.dumps(named)) == named
    body = {
        "inputs": [
            {"name": "x", "datatype": "FP32", "shape": [1, 2, 2], "data": [1, 2, 3, 4]},
            {"name": "n", "datatype": "INT64", "shape": [1], "data": [3]},
        ]
    }
    assert task.example_inputs(json.dumps(body)) == named
    with pytest.raises(ValueError, match="batch axis 1"):
        task.example_inputs(json.dumps({"inputs": [{**body["inputs"][1], "shape": [2]}]}))
    with pytest.raises(TypeError, match="JSON object"):
        task.example_inputs("[1, 2]")
    with pytest.raises(ValueError):
        task.example_inputs("not json")


def test_the_example_schema_nests_one_array_per_axis() -> None:
    assert task.example_schema(DYNAMIC) == {"type": "array", "items": {"type": "integer"}}
    spec = TensorSpec(name="m", datatype="BOOL", shape=[-1, 2, -1])
    assert task.example_schema(spec) == {
        "type": "array",
        "minItems": 2,
        "maxItems": 2,
        "items": {"type": "array", "items": {"type": "boolean"}},
    }
    assert task.example_schema(TensorSpec(name="s", datatype="FP16", shape=[-1])) == {
        "type": "number"
    }


def test_names_that_are_not_identifiers_are_quoted_in_messages() -> None:
    assert task.tensor_path("inputs[0]", "offset") == "inputs[0].offset"
    assert task.tensor_path("inputs[0]", "input.1") == 'inputs[0]["input.1"]'
