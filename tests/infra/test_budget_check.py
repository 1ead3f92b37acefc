"""The budget at synth: the version a stage's functions will serve is checked against their
settings, and one that does not fit fails the synth naming the setting and a value that works."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.budget_check import BudgetRefused, check_budgets, store_uri
from modelfn.registry import REPO_ROOT, ModelEntry, Registry
from modelfn.store import open_store, publish_artifact
from tests.infra.conftest import registry_from, synthesize
from tests.support.manifests import write_artifact

TWO_MODELS = """
[models.cifar10-cnn]
task = "image-classification"
architecture = "cifar10_cnn"
dataset = "cifar10"
data_subdir = "cifar-10-batches-py"
training = {{ config = "training/configs/cifar10-cnn.toml" }}
serving = {{ memory_mb = {memory_mb} }}

[models.torch-net]
task = "image-classification"
architecture = "cifar10_cnn"
dataset = "cifar10"
data_subdir = "cifar-10-batches-py"
training = {{ config = "training/configs/cifar10-cnn.toml" }}
serving = {{ runtime = "torch", memory_mb = 3008 }}
"""


def registry(tmp_path: Path, memory_mb: int) -> Registry:
    return registry_from(TWO_MODELS.format(memory_mb=memory_mb), tmp_path)


def published_store(tmp_path: Path, aliases: tuple[str, ...] = ("latest",)) -> Path:
    """A local store holding one cifar10-cnn version (a 2 MB graph) under `aliases`."""
    folder = write_artifact(tmp_path / "build", onnx=bytes(2 << 20))
    store = tmp_path / "store"
    publish_artifact(open_store(store), folder, aliases)
    return store


def entries(reg: Registry) -> list[ModelEntry]:
    return [reg.get(name) for name in reg.names()]


def test_a_version_that_fits_is_checked_and_passes(tmp_path: Path) -> None:
    store = published_store(tmp_path)
    result = check_budgets(
        entries(registry(tmp_path, 1024)), setting=str(store), stage="dev", model_alias=None
    )
    assert result.warnings == []
    assert "cifar10-cnn" in result.checked and "alias latest" in result.checked["cifar10-cnn"]
    [torch_note] = result.notes
    assert torch_note.startswith("torch-net: budget not computed for runtime torch")


def test_a_version_over_its_memory_fails_naming_the_setting_and_a_value(tmp_path: Path) -> None:
    store = published_store(tmp_path)
    with pytest.raises(BudgetRefused) as caught:
        check_budgets(
            entries(registry(tmp_path, 128)), setting=str(store), stage="prod", model_alias=None
        )
    message = str(caught.value)
    assert message.startswith("stage prod: 1 served version(s) would not fit their functions")
    assert "cifar10-cnn 2" in message  # the version, which starts with its year
    assert "over serving.memory_mb = 128; set serving.memory_mb = 256 in models.toml" in message


def test_the_stage_alias_is_the_one_checked(tmp_path: Path) -> None:
    store = published_store(tmp_path, aliases=("latest",))
    result = check_budgets(
        entries(registry(tmp_path, 128)), setting=str(store), stage="prod", model_alias="prod"
    )  # nothing under prod yet: noted, not refused
    assert result.checked == {}
    assert any("no version under alias 'prod'" in note for note in result.notes)


def test_an_unreadable_store_is_a_warning_not_a_failed_synth(tmp_path: Path) -> None:
    store = published_store(tmp_path)
    alias_file = next((store / "cifar10-cnn" / "aliases").iterdir())
    alias_file.write_text("{not json", encoding="utf-8")
    result = check_budgets(
        entries(registry(tmp_path, 128)), setting=str(store), stage="dev", model_alias=None
    )
    [warning] = result.warnings
    assert warning.startswith("stage dev: the budget of cifar10-cnn (alias 'latest' in ")
    assert "went unchecked" in warning


def test_none_turns_the_check_off_and_a_relative_folder_is_the_repositorys() -> None:
    assert store_uri("none") is None
    assert store_uri("model_artifacts") == str(REPO_ROOT / "model_artifacts")
    assert store_uri("s3://bucket/prefix") == "s3://bucket/prefix"


def test_cdk_json_checks_the_local_store_by_default() -> None:
    from modelfn.stages import cdk_json_context

    assert cdk_json_context()["modelfn:budget-store"] == "model_artifacts"


def test_synth_fails_on_a_version_that_does_not_fit(tmp_path: Path) -> None:
    store = published_store(tmp_path)
    with pytest.raises(BudgetRefused, match=r"set serving\.memory_mb = 256"):
        synthesize(registry(tmp_path, 128), tmp_path / "out", "dev", **{"budget-store": str(store)})


def test_synth_notes_each_checked_budget(tmp_path: Path) -> None:
    from aws_cdk.assertions import Annotations, Match

    store = published_store(tmp_path)
    synthesized = synthesize(
        registry(tmp_path, 1024), tmp_path / "out", "dev", **{"budget-store": str(store)}
    )
    infos = Annotations.from_stack(synthesized.stack).find_info(
        "*", Match.string_like_regexp(r"budget: cifar10-cnn .* /tmp \d+ MB, memory about")
    )
    assert infos
