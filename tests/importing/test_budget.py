"""The budget: a version that cannot fit the function's /tmp or memory is refused with the
setting to change and a value that works; a tight fit is a warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from importing import ImageOptions, ImportRefused, import_model
from importing.budget import BASE_MB, SESSION_FACTOR, check_budget
from modelfn.registry import ServingEntry
from tests.support.import_sources import nothing_written

MB = 1 << 20


def check(files_mb: float, graph_mb: float, serving: ServingEntry) -> list[str]:
    lines: list[str] = []
    sizes = {"model.onnx": int(graph_mb * MB), "model.safetensors": int((files_mb - graph_mb) * MB)}
    check_budget(sizes, int(graph_mb * MB), serving, lines.append)
    return lines


def test_a_small_model_fits_the_defaults_silently() -> None:
    assert check(90, 45, ServingEntry()) == []  # a ResNet-18: weights and graph


def test_tmp_too_small_names_the_setting_and_a_value_that_works() -> None:
    with pytest.raises(ImportRefused) as caught:
        check(400, 200, ServingEntry(memory_mb=2048))
    message = str(caught.value)
    assert "needs about 600 MB of /tmp (400 MB of files and 200 MB for onnxruntime's" in message
    assert "over serving.ephemeral_storage_mb = 512" in message
    assert "set serving.ephemeral_storage_mb = 1216 in models.toml" in message
    assert check(400, 200, ServingEntry(memory_mb=2048, ephemeral_storage_mb=1216)) == []


def test_room_for_one_version_but_not_two_is_a_warning() -> None:
    [warning] = check(200, 100, ServingEntry())
    assert warning.startswith("warning: serving.ephemeral_storage_mb = 512 holds this version")
    assert "a live alias move fetches the next version beside it" in warning


def test_memory_too_small_names_the_setting_the_assumption_and_a_value() -> None:
    with pytest.raises(ImportRefused) as caught:
        check(100, 50, ServingEntry(memory_mb=256))
    message = str(caught.value)
    expected = BASE_MB + SESSION_FACTOR * 50
    assert f"needs about {expected} MB: {BASE_MB} MB for the function process and " in message
    assert f"{SESSION_FACTOR}x the 50 MB graph" in message
    assert "over serving.memory_mb = 256; set serving.memory_mb = 512" in message
    assert check(100, 50, ServingEntry(memory_mb=512)) == []


def test_tight_memory_is_a_warning() -> None:
    [warning] = check(100, 50, ServingEntry(memory_mb=384))
    assert "over 75% of serving.memory_mb = 384" in warning


def test_a_model_too_large_for_any_function() -> None:
    with pytest.raises(ImportRefused, match="more than Lambda's 10240 MB"):
        check(6000, 3000, ServingEntry(memory_mb=10240, ephemeral_storage_mb=10240))


def test_an_import_over_budget_writes_nothing(tmp_path: Path, small_cnn_onnx: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(ImportRefused, match="over serving.memory_mb = 128"):
        import_model(
            small_cnn_onnx,
            name="small-cnn",
            task="image-classification",
            out_dir=out,
            labels=["a", "b", "c", "d"],
            image=ImageOptions(mean=(0.5,) * 3, std=(0.5,) * 3),
            serving=ServingEntry(memory_mb=128),
        )
    assert nothing_written(out)
