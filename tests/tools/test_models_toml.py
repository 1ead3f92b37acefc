"""An imported model's models.toml entry: appended as text, validated before the file changes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelfn.registry import REPO_ROOT, RegistryError, ServingEntry, load_registry
from tools.models_toml import add_imported_entry


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    path = tmp_path / "models.toml"
    shutil.copy(REPO_ROOT / "models.toml", path)
    return path


def test_the_entry_loads_with_its_description_and_serving_settings(registry: Path) -> None:
    description = 'ResNet-18 "v2", fine-tuned à Paris\nsecond line'
    serving = ServingEntry(memory_mb=2048, ephemeral_storage_mb=1024, alias="prod")
    add_imported_entry(registry, "paris-resnet", "image-classification", description, serving)
    entry = load_registry(registry).get("paris-resnet")
    assert entry.imported and entry.description == description
    assert entry.serving == serving
    assert load_registry(registry).names()[-1] == "paris-resnet"  # appended, the others kept


def test_an_entry_the_registry_would_refuse_leaves_the_file_as_it_was(registry: Path) -> None:
    before = registry.read_bytes()
    with pytest.raises(RegistryError, match="models.NotAName.name"):
        add_imported_entry(registry, "NotAName", "tensor", "", ServingEntry())
    assert registry.read_bytes() == before
    assert [p.name for p in registry.parent.iterdir()] == ["models.toml"]  # no temporary left
