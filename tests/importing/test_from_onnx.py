"""An ONNX file brought in as it is: the graph copied (its external data taken inside, or kept
as the contract's `model.onnx.data` past the size threshold), its tensors read from onnxruntime,
and the refusals that name what to re-export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from importing import ImageOptions, ImportRefused, import_model
from modelfn import artifact
from modelfn.artifact import (
    EXAMPLES_FILE,
    ONNX_DATA_FILE,
    ONNX_FILE,
    WEIGHTS_FILE,
    TensorSpec,
    parse_examples,
    sha256_file,
    verify_artifact,
)
from tests.support.import_sources import SmallCnn, export_onnx, nothing_written, png
from tests.support.small_models import regressor

LABELS = ["ant", "bee", "cat", "dog"]
SCHEME = ImageOptions(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


def refusal(tmp_path: Path, source: Path, **kwargs: object) -> str:
    out = tmp_path / "out"
    kwargs.setdefault("task", "image-classification")
    if kwargs["task"] == "image-classification":
        kwargs.setdefault("labels", LABELS)
        kwargs.setdefault("image", SCHEME)
    with pytest.raises(ImportRefused) as caught:
        import_model(source, name="refused", out_dir=out, **kwargs)  # type: ignore[arg-type]
    assert nothing_written(out)
    return str(caught.value)


def one_node_graph(path: Path, node: onnx.NodeProto, dtype: int, domains: dict[str, int]) -> Path:
    """A graph of one node, x [N, 4] -> y [N, 4]."""
    graph = helper.make_graph(
        [node],
        "one-node",
        [helper.make_tensor_value_info("x", dtype, ["N", 4])],
        [helper.make_tensor_value_info("y", dtype, ["N", 4])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in domains.items()]
    )
    onnx.save(model, str(path))
    return path


def test_an_image_classifier_keeps_its_graph_byte_for_byte(
    tmp_path: Path, small_cnn_onnx: Path
) -> None:
    examples = [png(tmp_path / "a.png"), png(tmp_path / "wide.png", size=(20, 12), seed=1)]
    folder = import_model(
        small_cnn_onnx,
        name="small-cnn",
        task="image-classification",
        out_dir=tmp_path / "out",
        labels=LABELS,
        image=SCHEME,
        examples=examples,
    )
    manifest = verify_artifact(folder)
    assert set(manifest.files) == {ONNX_FILE, EXAMPLES_FILE}  # no weights of its own
    assert "onnxruntime" in manifest.frameworks and "torch" not in manifest.frameworks
    assert (folder / ONNX_FILE).read_bytes() == small_cnn_onnx.read_bytes()
    assert manifest.version.endswith(sha256_file(small_cnn_onnx)[:8])
    assert [(t.name, t.shape) for t in manifest.inputs] == [("image", [-1, 3, 8, 8])]
    assert manifest.outputs[0].shape == [-1, 4]
    pre = manifest.preprocessing
    assert pre is not None and (pre.height, pre.width) == (8, 8)  # from the graph
    record = manifest.imported
    assert record is not None and record.source == "onnx" and record.reference == "model.onnx"
    assert record.source_sha256 == {"model.onnx": sha256_file(small_cnn_onnx)}
    assert record.parity_inputs == "examples" and set(record.parity) == {"linear"}
    assert len(parse_examples((folder / EXAMPLES_FILE).read_bytes()).examples) == 2


def test_external_data_goes_inside_the_one_graph_file(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    torch.manual_seed(0)
    export_onnx(
        SmallCnn(), (torch.randn(2, 3, 8, 8),), source / "cnn.onnx", ["image"], external_data=True
    )
    [data_file] = [p for p in source.iterdir() if p.name != "cnn.onnx"]  # beside the graph
    folder = import_model(
        source / "cnn.onnx",
        name="small-cnn",
        task="image-classification",
        out_dir=tmp_path / "out",
        labels=LABELS,
        image=SCHEME,
    )
    manifest = verify_artifact(folder)
    assert manifest.imported is not None
    assert manifest.imported.source_sha256 == {
        "cnn.onnx": sha256_file(source / "cnn.onnx"),
        data_file.name: sha256_file(data_file),
    }
    assert manifest.imported.parity_inputs == "generated"
    alone = tmp_path / "alone"  # the graph file without anything beside it still runs
    alone.mkdir()
    shutil.copy(folder / ONNX_FILE, alone / ONNX_FILE)
    session = ort.InferenceSession(str(alone / ONNX_FILE), providers=["CPUExecutionProvider"])
    x = np.zeros((2, 3, 8, 8), np.float32)
    reference = ort.InferenceSession(str(source / "cnn.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(
        session.run(None, {"image": x}), reference.run(None, {"image": x})
    )


def test_missing_external_data_is_named(tmp_path: Path) -> None:
    export_onnx(
        SmallCnn(), (torch.randn(2, 3, 8, 8),), tmp_path / "cnn.onnx", ["image"], external_data=True
    )
    for p in tmp_path.iterdir():
        if p.name != "cnn.onnx":
            p.unlink()
    assert "which is not beside it" in refusal(tmp_path, tmp_path / "cnn.onnx")


def test_a_fixed_batch_dimension_names_the_input_and_how_to_re_export(tmp_path: Path) -> None:
    source = export_onnx(
        SmallCnn(), (torch.randn(1, 3, 8, 8),), tmp_path / "fixed.onnx", ["image"],
        dynamic_batch=False,
    )  # fmt: skip
    message = refusal(tmp_path, source)
    assert "graph input 'image' has a fixed batch dimension [1, 3, 8, 8]" in message
    assert "dynamic_shapes" in message and "dynamic_axes={'image': {0: 'batch'}}" in message


def test_an_operator_onnxruntime_has_no_kernel_for(tmp_path: Path) -> None:
    # Relu on int64 is valid ONNX (opset 14 widened its types), but onnxruntime's CPU provider
    # has no such kernel.
    node = helper.make_node("Relu", ["x"], ["y"], name="relu_ids")
    source = one_node_graph(tmp_path / "relu.onnx", node, TensorProto.INT64, {"": 17})
    message = refusal(tmp_path, source, task="tensor")
    assert "operator Relu (opset 14) at node 'relu_ids' has no kernel in onnxruntime" in message
    assert "runtime torch" in message


def test_a_custom_operator(tmp_path: Path) -> None:
    node = helper.make_node("FancyNorm", ["x"], ["y"], domain="com.example")
    source = one_node_graph(
        tmp_path / "custom.onnx", node, TensorProto.FLOAT, {"": 17, "com.example": 1}
    )
    message = refusal(tmp_path, source, task="tensor")
    assert "operator FancyNorm of domain com.example is a custom operator" in message


def test_labels_that_do_not_match_the_output_width(tmp_path: Path, small_cnn_onnx: Path) -> None:
    message = refusal(tmp_path, small_cnn_onnx, labels=["ant", "bee", "cat"])
    assert "output 'linear' gives 4 scores per input but 3 labels were given" in message


def test_a_file_that_is_not_onnx(tmp_path: Path) -> None:
    source = tmp_path / "model.onnx"
    source.write_bytes(b"this is not a protobuf at all \xff\xfe")
    assert "is not an ONNX model" in refusal(tmp_path, source, task="tensor")


def test_torch_options_do_not_apply_to_an_onnx_file(tmp_path: Path, small_cnn_onnx: Path) -> None:
    message = refusal(tmp_path, small_cnn_onnx, weights=tmp_path / "w.pt", opset=18)
    assert "weights, opset apply to a torch module" in message


def test_an_image_size_the_graph_does_not_have(tmp_path: Path, small_cnn_onnx: Path) -> None:
    scheme = ImageOptions(size=(16, 16), mean=SCHEME.mean, std=SCHEME.std)
    message = refusal(tmp_path, small_cnn_onnx, image=scheme)
    assert "--image-size 16x16 but graph input 'image' is [N, 3, 8, 8], which fixes 8x8" in message


def test_a_layout_the_graph_does_not_have_says_which_it_has(
    tmp_path: Path, small_cnn_onnx: Path
) -> None:
    scheme = ImageOptions(mean=SCHEME.mean, std=SCHEME.std, layout="NHWC")
    message = refusal(tmp_path, small_cnn_onnx, image=scheme)
    assert "layout NHWC needs [N, H, W, 3] (the graph looks NCHW: --layout NCHW)" in message


def test_a_tensor_model_with_two_inputs_and_json_examples(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = export_onnx(
        regressor(), (torch.randn(2, 16), torch.randint(0, 10, (2, 4))), tmp_path / "reg.onnx",
        ["x", "ids"],
    )  # fmt: skip
    examples = []
    for i in range(2):  # one without its batch axis, one with it
        x = np.round(np.random.default_rng(i).standard_normal(16), 3).tolist()
        ids = [1, 2, 3, i]
        body = {"x": x, "ids": ids} if i == 0 else {"x": [x], "ids": [ids]}
        path = tmp_path / f"example-{i}.json"
        path.write_text(json.dumps(body))
        examples.append(path)
    folder = import_model(source, name="regressor", task="tensor", out_dir=tmp_path / "out",
                          examples=examples)  # fmt: skip
    manifest = verify_artifact(folder)
    assert manifest.preprocessing is None and manifest.labels == []
    assert [(t.name, t.datatype, t.shape) for t in manifest.inputs] == [
        ("x", "FP32", [-1, 16]),
        ("ids", "INT64", [-1, 4]),
    ]
    assert manifest.imported is not None and len(manifest.imported.parity) == 2
    example = parse_examples((folder / EXAMPLES_FILE).read_bytes()).examples[0]
    # One example as the predict route takes it: named tensors, no batch axis.
    item = json.loads(example.input)
    assert set(item) == {"x", "ids"} and item["ids"] == [1, 2, 3, 0] and len(item["x"]) == 16
    assert WEIGHTS_FILE not in manifest.files


def test_a_tensor_model_with_an_npy_example(tmp_path: Path, small_cnn_onnx: Path) -> None:
    example = tmp_path / "x.npy"
    np.save(example, np.random.default_rng(0).standard_normal((3, 8, 8)).astype(np.float32))
    folder = import_model(small_cnn_onnx, name="cnn-tensors", task="tensor",
                          out_dir=tmp_path / "out", examples=[example])  # fmt: skip
    manifest = verify_artifact(folder)
    assert manifest.imported is not None and manifest.imported.parity_inputs == "examples"
    assert manifest.imported.example_sha256 == [sha256_file(example)]


def test_external_data_over_the_threshold_stays_external_under_the_contracts_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    torch.manual_seed(0)
    export_onnx(
        SmallCnn(), (torch.randn(2, 3, 8, 8),), source / "cnn.onnx", ["image"], external_data=True
    )
    [data_file] = [p for p in source.iterdir() if p.name != "cnn.onnx"]
    # The graph and its weights (about 2 KB) over a lowered threshold, as a 3 GB model is.
    monkeypatch.setattr(artifact, "EXTERNAL_DATA_THRESHOLD", 1000)
    folder = import_model(
        source / "cnn.onnx",
        name="small-cnn",
        task="image-classification",
        out_dir=tmp_path / "out",
        labels=LABELS,
        image=SCHEME,
    )
    manifest = verify_artifact(folder)
    assert set(manifest.files) == {ONNX_FILE, ONNX_DATA_FILE}
    assert manifest.files[ONNX_DATA_FILE].sha256 == sha256_file(data_file)  # copied as it is
    assert manifest.imported is not None
    assert manifest.imported.source_sha256[data_file.name] == sha256_file(data_file)
    graph = onnx.load(str(folder / ONNX_FILE), load_external_data=False)
    locations = {
        e.value for t in graph.graph.initializer for e in t.external_data if e.key == "location"
    }
    assert locations == {ONNX_DATA_FILE}
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    served = ort.InferenceSession(str(folder / ONNX_FILE), providers=["CPUExecutionProvider"])
    reference = ort.InferenceSession(str(source / "cnn.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(served.run(None, {"image": x}), reference.run(None, {"image": x}))


def test_truncated_external_data_is_refused_naming_the_file(tmp_path: Path) -> None:
    export_onnx(
        SmallCnn(), (torch.randn(2, 3, 8, 8),), tmp_path / "cnn.onnx", ["image"], external_data=True
    )
    [data_file] = [p for p in tmp_path.iterdir() if p.name != "cnn.onnx"]
    with data_file.open("r+b") as fh:
        fh.truncate(data_file.stat().st_size // 2)
    message = refusal(tmp_path, tmp_path / "cnn.onnx")
    assert data_file.name in message and "truncated" in message


def test_a_torch_module_over_the_threshold_is_exported_with_external_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safetensors.torch import save_model

    weights = tmp_path / "regressor.safetensors"
    save_model(regressor(features=300), str(weights))  # a 3 x 308 head: 3.7 KB of weights
    monkeypatch.setattr(artifact, "EXTERNAL_DATA_THRESHOLD", 1000)
    folder = import_model(
        "tests.support.small_models:regressor",
        name="wide-regressor",
        task="tensor",
        out_dir=tmp_path / "out",
        weights=weights,
        factory_args={"features": 300},
        inputs=[
            TensorSpec(name="x", datatype="FP32", shape=[-1, 300]),
            TensorSpec(name="ids", datatype="INT64", shape=[-1, 4]),
        ],
    )
    manifest = verify_artifact(folder)
    assert {ONNX_FILE, ONNX_DATA_FILE} <= set(manifest.files)
    assert (folder / ONNX_DATA_FILE).stat().st_size >= 3 * 308 * 4
