"""A version whose weights are external data has no edge bundle: refused, saying why and what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge import parity
from edge.export import export_bundle
from modelfn.artifact import ONNX_DATA_FILE, ArtifactError
from modelfn.registry import load_registry
from tests.support.manifests import linear_onnx_graph, write_artifact


def test_external_data_is_refused_naming_the_file_and_the_function(tmp_path: Path) -> None:
    graph, _, _ = linear_onnx_graph()
    folder = write_artifact(tmp_path / "build", onnx=graph, external_data=True)
    entry = load_registry().get("cifar10-cnn")
    with pytest.raises(ArtifactError) as caught:
        export_bundle(folder, tmp_path / "out", entry, parity.TestData())
    message = str(caught.value)
    assert ONNX_DATA_FILE in message and "serve the model through the function" in message
    assert not (tmp_path / "out").exists()
