"""tools/evaluate.py on an imported model: refused by name before anything is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelfn.registry import RegistryError
from modelfn.store import LocalStore
from tools.evaluate import served_metrics


def test_an_imported_model_has_no_data_set_to_evaluate_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = tmp_path / "models.toml"
    registry.write_text('[models.imported-tensor]\ntask = "tensor"\nimported = true\n')
    monkeypatch.setenv("MODELFN_REGISTRY", str(registry))
    with pytest.raises(RegistryError, match="imported-tensor was imported"):
        served_metrics("imported-tensor", LocalStore(tmp_path / "store"))
