"""Training's exporter writes the contract's graph files: one, or graph + external data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from modelfn import artifact
from modelfn.artifact import ONNX_DATA_FILE, ONNX_FILE
from training.export_onnx import GraphTensor, check_parity, export_onnx

INPUTS = [GraphTensor("input", "FP32", ("batch", 64))]
OUTPUTS = [GraphTensor("logits", "FP32", ("batch", 64))]


@pytest.mark.parametrize("threshold", [artifact.EXTERNAL_DATA_THRESHOLD, 1000])
def test_the_graph_is_split_past_the_threshold_and_still_matches_torch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threshold: int
) -> None:
    monkeypatch.setattr(artifact, "EXTERNAL_DATA_THRESHOLD", threshold)
    torch.manual_seed(0)
    model = nn.Linear(64, 64)  # 16 KB of weights
    names = export_onnx(
        model, (torch.randn(2, 64),), tmp_path / ONNX_FILE, inputs=INPUTS, outputs=OUTPUTS
    )
    split = threshold < 16_000
    assert names == ([ONNX_FILE, ONNX_DATA_FILE] if split else [ONNX_FILE])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    feeds = {"input": np.random.default_rng(0).standard_normal((5, 64)).astype(np.float32)}
    assert check_parity(tmp_path / ONNX_FILE, model, feeds, 1e-5) <= 1e-5
