"""Examples of the wrong kind or shape are refused, naming the file and what the graph takes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from importing import ImageOptions, ImportRefused, import_model
from importing.examples import tensor_examples
from modelfn.artifact import TensorSpec
from tests.support.import_sources import nothing_written, png

X = TensorSpec(name="x", datatype="FP32", shape=[-1, 16])
IDS = TensorSpec(name="ids", datatype="INT64", shape=[-1, 4])


def refused(paths: list[Path], inputs: list[TensorSpec]) -> str:
    with pytest.raises(ImportRefused) as caught:
        tensor_examples(paths, inputs)
    return str(caught.value)


def write_json(path: Path, body: object) -> Path:
    path.write_text(json.dumps(body))
    return path


def test_an_array_for_an_image_model_is_refused_and_nothing_written(
    tmp_path: Path, small_cnn_onnx: Path
) -> None:
    example = tmp_path / "pixels.npy"
    np.save(example, np.zeros((3, 8, 8), np.float32))
    out = tmp_path / "out"
    with pytest.raises(ImportRefused) as caught:
        import_model(
            small_cnn_onnx,
            name="small-cnn",
            task="image-classification",
            out_dir=out,
            labels=["a", "b", "c", "d"],
            image=ImageOptions(mean=(0.5,) * 3, std=(0.5,) * 3),
            examples=[example],
        )
    message = str(caught.value)
    assert f"example {example} is not an image PIL can decode" in message
    assert ".npy files are examples for the tensor task" in message
    assert nothing_written(out)


def test_an_image_for_a_tensor_model(tmp_path: Path) -> None:
    message = refused([png(tmp_path / "cat.png")], [X])
    assert "the tensor task takes .npy files or .json files of named tensors" in message


def test_a_wrong_shape_names_the_input_and_the_graphs_shape(tmp_path: Path) -> None:
    example = tmp_path / "short.npy"
    np.save(example, np.zeros((1, 15), np.float32))
    message = refused([example], [X])
    assert f"example {example}: 'x' has shape [1, 15]; the graph takes [N, 16]" in message


def test_more_than_one_row_is_not_one_example(tmp_path: Path) -> None:
    example = tmp_path / "batch.npy"
    np.save(example, np.zeros((2, 16), np.float32))
    assert "an example is one row (batch axis 1 or none)" in refused([example], [X])


def test_names_must_be_the_graphs(tmp_path: Path) -> None:
    example = write_json(tmp_path / "e.json", {"x": [0.0] * 16, "tokens": [1, 2, 3, 4]})
    assert "gives tokens, x; the graph takes x, ids" in refused([example], [X, IDS])


def test_fractions_for_an_integer_input(tmp_path: Path) -> None:
    example = write_json(tmp_path / "e.json", {"x": [0.0] * 16, "ids": [0.5, 1, 2, 3]})
    assert "'ids' holds float64 values; the graph takes INT64" in refused([example], [X, IDS])


def test_an_npy_file_for_a_graph_of_two_inputs(tmp_path: Path) -> None:
    example = tmp_path / "x.npy"
    np.save(example, np.zeros(16, np.float32))
    assert "a .npy file holds one tensor but the graph takes 2 (x, ids)" in refused(
        [example], [X, IDS]
    )


def test_a_pickled_object_array_is_not_loaded(tmp_path: Path) -> None:
    example = tmp_path / "objects.npy"
    np.save(example, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert "is not a numeric .npy array" in refused([example], [X])


def test_ragged_json_is_refused(tmp_path: Path) -> None:
    example = write_json(tmp_path / "e.json", {"x": [[0.0] * 16, [0.0]]})
    assert "'x' is not a rectangular array of numbers" in refused([example], [X])


def test_integers_for_a_float_input_are_taken_as_floats(tmp_path: Path) -> None:
    example = write_json(tmp_path / "e.json", {"x": list(range(16))})
    [case] = tensor_examples([example], [X]).cases
    assert case.feeds["x"].dtype == np.float32 and case.feeds["x"].shape == (1, 16)
