"""An imported tensor model through the real Lambda handler (payload 2.0 events).

The graph (tests/support/imported.py) takes two named inputs, "input.1" FP32 [N, 4] (a name
torch's exporter gives, not an identifier) and "offset" INT64 [N], and answers "y" [N, 3] and
"norm" [N]; its numpy twin gives every expected value. Its examples.json holds one example in
each form an example can take: named tensors, and an OIP request body with a batch axis of 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.limits import MAX_BATCH
from modelfn.artifact import Example, Examples, read_manifest
from tests.functions.conftest import call, handler_for
from tests.functions.test_openapi import Checker, check_examples
from tests.support.imported import tensor_twin, write_tensor_model
from tests.support.oip import binary_infer

NAME = "imported-tensor"
PREDICT, INFER = f"/models/{NAME}/predict", f"/v2/models/{NAME}/infer"
X = np.array([[0.5, -1.0, 2.0, 0.25], [1.5, 0.0, -0.5, 3.0], [0.0, 0.0, 0.0, 0.0]], np.float32)
OFFSET = np.array([0, 7, -2], np.int64)
OIP_EXAMPLE = {
    "inputs": [
        {"name": "input.1", "datatype": "FP32", "shape": [1, 4], "data": [1.0, 2.0, 3.0, 4.0]},
        {"name": "offset", "datatype": "INT64", "shape": [1], "data": [3]},
    ]
}
EXAMPLES = Examples(
    dataset="user examples",
    examples=[
        Example(
            input=json.dumps({"input.1": X[0].tolist(), "offset": 5}), split="examples", index=0
        ),
        Example(input=json.dumps(OIP_EXAMPLE), split="examples", index=1),
    ],
)


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Checker, Path]:
    root = tmp_path_factory.mktemp("imported-tensor")
    folder = write_tensor_model(root / "build", examples=EXAMPLES)
    return Checker(handler_for(folder, root, playground=True)), folder


def examples(x: np.ndarray, offset: np.ndarray) -> list[dict[str, Any]]:
    return [{"input.1": row.tolist(), "offset": int(o)} for row, o in zip(x, offset, strict=True)]


def test_predict_takes_one_object_per_example_and_answers_one_per_example(
    imported: tuple[Checker, Path],
) -> None:
    checker, folder = imported
    reply = checker("POST", PREDICT, {"inputs": examples(X, OFFSET)})
    assert reply.status == 200, reply.body
    body = reply.json()
    assert (body["model"], body["version"]) == (NAME, folder.name)
    want = tensor_twin(X, OFFSET)
    assert len(body["outputs"]) == 3
    for i, output in enumerate(body["outputs"]):
        assert list(output) == ["y", "norm"]
        assert output["y"] == pytest.approx(want["y"][i].tolist(), abs=1e-5)
        assert output["norm"] == pytest.approx(float(want["norm"][i]), abs=1e-5)


def test_oip_json_returns_every_output_or_the_requested_ones(
    imported: tuple[Checker, Path],
) -> None:
    checker, _ = imported
    inputs = [
        {"name": "input.1", "shape": [3, 4], "datatype": "FP32", "data": X.ravel().tolist()},
        {"name": "offset", "shape": [3], "datatype": "INT64", "data": OFFSET.tolist()},
    ]
    want = tensor_twin(X, OFFSET)
    reply = checker("POST", INFER, {"id": "t1", "inputs": inputs})
    assert reply.status == 200, reply.body
    y, norm = reply.json()["outputs"]
    assert (y["name"], y["shape"], y["datatype"]) == ("y", [3, 3], "FP32")
    assert (norm["name"], norm["shape"]) == ("norm", [3])
    assert y["data"] == pytest.approx(want["y"].ravel().tolist(), abs=1e-5)
    assert norm["data"] == pytest.approx(want["norm"].tolist(), abs=1e-5)
    only = checker("POST", INFER, {"inputs": inputs, "outputs": [{"name": "norm"}]}).json()
    assert [o["name"] for o in only["outputs"]] == ["norm"]


def test_oip_binary_tensors_in_and_out(imported: tuple[Checker, Path]) -> None:
    checker, _ = imported
    status, meta, outputs = binary_infer(
        checker.handler, INFER, {"input.1": X, "offset": OFFSET}, outputs=["y"]
    )
    assert status == 200 and [o["name"] for o in meta["outputs"]] == ["y"]
    np.testing.assert_allclose(outputs["y"], tensor_twin(X, OFFSET)["y"], atol=1e-5)


def test_metadata_is_the_manifests_inputs_and_outputs(imported: tuple[Checker, Path]) -> None:
    checker, _ = imported
    meta = checker("GET", f"/v2/models/{NAME}").json()
    assert meta["inputs"] == [
        {"name": "input.1", "datatype": "FP32", "shape": [-1, 4]},
        {"name": "offset", "datatype": "INT64", "shape": [-1]},
    ]
    assert [t["name"] for t in meta["outputs"]] == ["y", "norm"]


GOOD = {"input.1": [0.0, 1.0, 2.0, 3.0], "offset": 1}


@pytest.mark.parametrize(
    ("inputs", "expect"),
    [
        ([GOOD, {"input.1": [0.0] * 4}], "inputs[1]: missing 'offset'"),
        ([{**GOOD, "bias": [1.0]}], "inputs[0]: the model has no input 'bias'"),
        ([GOOD, GOOD, {**GOOD, "input.1": [0.0] * 5}], 'inputs[2]["input.1"]: shape [5]'),
        ([{**GOOD, "input.1": [[0.0] * 4]}], 'inputs[0]["input.1"]: shape [1, 4]'),
        ([{**GOOD, "offset": [1, 2]}], "inputs[0].offset: shape [2] does not fit"),
        ([{**GOOD, "input.1": [0.0, "a", 2.0, 3.0]}], 'inputs[0]["input.1"]: every value must be'),
        ([{**GOOD, "input.1": [0.0, None, 2.0, 3.0]}], 'inputs[0]["input.1"]: every value must be'),
        ([{**GOOD, "input.1": [[0.0], [1.0, 2.0]]}], 'inputs[0]["input.1"]: a ragged nested list'),
        ([{**GOOD, "input.1": [True, False, True, True]}], "data must be FP32 values"),
        ([{**GOOD, "offset": 1.5}], "inputs[0].offset: data must be INT64 values"),
        ([{**GOOD, "offset": 2**63}], "inputs[0].offset: values out of range for INT64"),
        ([GOOD, "not an object"], "inputs[1]: expected an object mapping the model's inputs"),
        ([GOOD] * (MAX_BATCH + 1), f"at most {MAX_BATCH} per request"),
    ],
)
def test_bad_examples_are_400s_naming_the_example_and_the_tensor(
    imported: tuple[Checker, Path], inputs: list[Any], expect: str
) -> None:
    checker, _ = imported
    reply = checker("POST", PREDICT, {"inputs": inputs})
    assert reply.status == 400, reply.body
    assert reply.json().keys() == {"error"}
    assert expect in reply.json()["error"]


def test_parameters_are_refused_by_name(imported: tuple[Checker, Path]) -> None:
    checker, _ = imported
    reply = checker("POST", PREDICT, {"inputs": [GOOD], "parameters": {"top_k": 3}})
    assert reply.status == 400 and "parameters.top_k" in reply.json()["error"]


def test_oip_refusals_name_the_tensor(imported: tuple[Checker, Path]) -> None:
    checker, _ = imported
    x = {"name": "input.1", "shape": [1, 4], "datatype": "FP32", "data": [0.0] * 4}
    reply = checker("POST", INFER, {"inputs": [x]})
    assert reply.status == 400 and "inputs: missing ['offset']" in reply.json()["error"]
    wrong = {"name": "offset", "shape": [1], "datatype": "FP32", "data": [0.0]}
    reply = checker("POST", INFER, {"inputs": [x, wrong]})
    assert (
        reply.status == 400 and "datatype 'FP32'; the model takes 'INT64'" in reply.json()["error"]
    )


def test_the_card_and_page_of_a_tensor_model(imported: tuple[Checker, Path]) -> None:
    checker, folder = imported
    card = call(checker.handler, "GET", f"/models/{NAME}/card.json").json()
    assert (card["task"], card["labels"], card["headline"]) == ("tensor", [], None)
    assert card["imported"]["source"] == "onnx" and card["training"] is None
    assert [t["name"] for t in card["inputs"]] == ["input.1", "offset"]
    assert card["limits"] == {"top_k": None, "max_tokens": None}
    # Both forms of example become one example's named tensors, as the page's form sends them.
    assert [json.loads(e["input"]) for e in card["examples"]] == [
        {"input.1": X[0].tolist(), "offset": 5},
        {"input.1": [1.0, 2.0, 3.0, 4.0], "offset": 3},
    ]
    assert call(checker.handler, "GET", f"/models/{NAME}/page").status == 200
    assert read_manifest(folder).preprocessing is None


def test_the_openapi_document_describes_this_models_tensors(imported: tuple[Checker, Path]) -> None:
    checker, _ = imported
    doc = checker.doc
    assert f"`{NAME}`" in doc["info"]["description"] and "(tensor)" in doc["info"]["description"]
    assert check_examples(doc) >= 8
    schemas = doc["components"]["schemas"]
    item = schemas["PredictRequest-tensor"]["properties"]["inputs"]["items"]
    assert item["required"] == ["input.1", "offset"] and item["additionalProperties"] is False
    assert (
        item["properties"]["input.1"]["minItems"] == item["properties"]["input.1"]["maxItems"] == 4
    )
    assert item["properties"]["offset"]["type"] == "integer"
    outputs = schemas["PredictResponse-tensor"]["properties"]["outputs"]["items"]
    assert outputs["required"] == ["y", "norm"]
    parameters = schemas["PredictRequest-tensor"]["properties"]["parameters"]
    assert parameters["$ref"].endswith("/NoParameters")
    # Each documented request is answered as documented.
    predict = doc["paths"]["/models/{name}/predict"]["post"]
    requests = predict["requestBody"]["content"]["application/json"]["examples"]
    answers = predict["responses"]["200"]["content"]["application/json"]["examples"]
    assert len(requests) == 2
    for key, example in requests.items():
        assert checker("POST", PREDICT, example["value"]).json() == answers[key]["value"], key
    infer = doc["paths"]["/v2/models/{name}/infer"]["post"]
    documented = infer["requestBody"]["content"]["application/json"]["examples"]
    for key, example in documented.items():
        reply = checker("POST", INFER, example["value"]).json()
        assert (
            reply
            == infer["responses"]["200"]["content"]["application/json"]["examples"][key]["value"]
        )
    (first,) = documented.values()
    assert [t["shape"] for t in first["value"]["inputs"]] == [[1, 4], [1]]


def test_a_tensor_model_without_examples_documents_made_up_zeros(tmp_path: Path) -> None:
    folder = write_tensor_model(tmp_path / "build")
    checker = Checker(handler_for(folder, tmp_path))
    assert "made up" in checker.doc["info"]["description"]
    predict = checker.doc["paths"]["/models/{name}/predict"]["post"]
    (example,) = predict["requestBody"]["content"]["application/json"]["examples"].values()
    assert example["value"] == {"inputs": [{"input.1": [0.0, 0.0, 0.0, 0.0], "offset": 0}]}
    check_examples(checker.doc)
