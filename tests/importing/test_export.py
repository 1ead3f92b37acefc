"""The export: dynamo first; the legacy TorchScript exporter only when dynamo cannot capture
forward, said in the log and the record, with the parity gate as the check of what it traced."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import save_model

from importing import ParityRefused, import_model
from modelfn.artifact import TensorSpec, verify_artifact
from tests.support.import_sources import nothing_written
from tests.support.small_models import branching

BRANCHING = "tests.support.small_models:branching"
X = [TensorSpec(name="x", datatype="FP32", shape=[-1, 16])]


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    path = tmp_path / "branching.safetensors"
    save_model(branching(), str(path))
    return path


def test_control_flow_on_values_falls_back_to_tracing_and_says_so(
    tmp_path: Path, weights: Path
) -> None:
    lines: list[str] = []
    folder = import_model(BRANCHING, name="branching", task="tensor", out_dir=tmp_path / "out",
                          weights=weights, inputs=X, log=lines.append)  # fmt: skip
    [warning] = [line for line in lines if line.startswith("warning:")]
    assert "the dynamo exporter failed (GuardOnDataDependentSymNode: " in warning
    assert "legacy TorchScript exporter" in warning and "\x1b[" not in warning
    record = verify_artifact(folder).imported
    assert record is not None and record.options["exporter"] == "torchscript"


def test_the_parity_gate_catches_the_branch_tracing_did_not_take(
    tmp_path: Path, weights: Path
) -> None:
    out = tmp_path / "out"
    with pytest.raises(ParityRefused, match=r"output 'output' differs on generated input \d"):
        import_model(BRANCHING, name="branching", task="tensor", out_dir=out, weights=weights,
                     inputs=X, factory_args={"threshold": 0.0}, log=lambda _: None)  # fmt: skip
    assert nothing_written(out)
