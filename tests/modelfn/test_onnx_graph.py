"""The one ONNX writer: one file up to the contract's threshold, graph + external data past it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from modelfn import artifact
from modelfn.artifact import ONNX_DATA_FILE, ONNX_FILE
from modelfn.onnx_graph import save_graph
from tests.support.manifests import linear_onnx_graph


def run(path: Path) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.linspace(-1, 1, 2 * 3 * 32 * 32, dtype=np.float32).reshape(2, 3, 32, 32)
    return np.asarray(session.run(None, {"input": x})[0])


def test_a_graph_under_the_threshold_is_one_file(tmp_path: Path) -> None:
    data, _, _ = linear_onnx_graph()
    (tmp_path / ONNX_DATA_FILE).write_bytes(b"left by an earlier export")
    assert save_graph(onnx.load_model_from_string(data), tmp_path / ONNX_FILE) == [ONNX_FILE]
    assert sorted(p.name for p in tmp_path.iterdir()) == [ONNX_FILE]


def test_a_graph_over_the_threshold_keeps_its_weights_in_the_contracts_data_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, weight, _ = linear_onnx_graph()
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    save_graph(onnx.load_model_from_string(data), one / ONNX_FILE)
    # 120 KiB of weights: over a threshold of 100 KiB, as a 3 GB model is over the real one.
    monkeypatch.setattr(artifact, "EXTERNAL_DATA_THRESHOLD", 100 << 10)
    (two / ONNX_DATA_FILE).write_bytes(b"stale bytes onnx would append to")
    names = save_graph(onnx.load_model_from_string(data), two / ONNX_FILE)
    assert names == [ONNX_FILE, ONNX_DATA_FILE]
    assert (two / ONNX_FILE).stat().st_size < 1024  # the graph alone
    # The weight matrix; the 40-byte bias stays in the graph. Nothing appended to stale bytes.
    assert (two / ONNX_DATA_FILE).stat().st_size == np.asarray(weight).nbytes
    assert (two / ONNX_DATA_FILE).stat().st_mode == (two / ONNX_FILE).stat().st_mode
    locations = {
        e.value
        for t in onnx.load(str(two / ONNX_FILE), load_external_data=False).graph.initializer
        for e in t.external_data
        if e.key == "location"
    }
    assert locations == {ONNX_DATA_FILE}
    np.testing.assert_array_equal(run(two / ONNX_FILE), run(one / ONNX_FILE))


def test_a_graph_whose_weights_are_not_loaded_is_refused(tmp_path: Path) -> None:
    data, _, _ = linear_onnx_graph()
    save_graph(onnx.load_model_from_string(data), tmp_path / ONNX_FILE, threshold=0)
    unloaded = onnx.load(str(tmp_path / ONNX_FILE), load_external_data=False)
    with pytest.raises(ValueError, match="needs the weights in memory"):
        save_graph(unloaded, tmp_path / "again.onnx")


def test_the_manifest_refuses_external_data_without_its_graph() -> None:
    entry = {"sha256": "0" * 64, "size": 1}
    with pytest.raises(ValueError, match="without the graph"):
        artifact.Manifest.model_validate(
            {
                "name": "m",
                "version": "20250101T000000Z-00000000",
                "task": "tensor",
                "created_at": "2025-01-01T00:00:00Z",
                "frameworks": {},
                "inputs": [],
                "outputs": [],
                "labels": [],
                "metrics": {},
                "imported": {
                    "source": "onnx",
                    "reference": "x.onnx",
                    "source_sha256": {},
                    "parity_inputs": "none",
                    "tolerance": 1e-4,
                },
                "files": {ONNX_DATA_FILE: entry},
            }
        )
