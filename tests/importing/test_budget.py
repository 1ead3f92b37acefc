"""The budget: a version that cannot fit the function's /tmp or memory is refused with the
setting to change and a value that works; a tight fit is a warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from importing import ImageOptions, ImportRefused, import_model
from importing.budget import check_budget
from modelfn.budget import BASE_MB, SESSION_FACTOR
from modelfn.registry import ServingEntry
from tests.support.import_sources import nothing_written

MB = 1 << 20


def check(files_mb: float, graph_mb: float, serving: ServingEntry) -> list[str]:
    lines: list[str] = []
    # The rest as a file every runtime reads (examples, reports): the weights are another matter.
    sizes = {"model.onnx": int(graph_mb * MB), "report.json": int((files_mb - graph_mb) * MB)}
    check_budget(sizes, serving, lines.append)
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
    [init] = check(400, 200, ServingEntry(memory_mb=2048, ephemeral_storage_mb=1216))
    assert "past the 10 s Lambda gives an on-demand init" in init  # 600 MB to fetch and load


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


def test_an_init_past_the_10_s_window_is_a_warning_that_names_the_warm_starts() -> None:
    serving = ServingEntry(memory_mb=4096, ephemeral_storage_mb=2048)
    [warning] = check(400, 200, serving)  # 0.6 s + 600 MB at 50 MB/s: about 13 s
    assert warning.startswith(
        "warning: a fresh environment's init takes about 13 s (0.6 s to start"
    )
    assert "within serving.timeout_s = 15, so every cold start answers its first request" in warning
    # /tmp over 512 MB rules SnapStart out: provisioned concurrency is the one way named.
    assert "provisioned_concurrency] min = 1" in warning and "snapstart" not in warning


def test_snapstart_is_offered_where_the_function_can_have_it() -> None:
    [warning] = check(250, 150, ServingEntry(memory_mb=2048))  # /tmp 512: 400 MB, one version
    assert warning.startswith("warning: serving.ephemeral_storage_mb = 512 holds this version")
    [init] = check(320, 180, ServingEntry(memory_mb=2048))[1:]  # about 10.6 s
    assert "set serving.snapstart = true (init runs when a version is published)" in init


def test_an_init_longer_than_the_timeout_is_refused() -> None:
    serving = ServingEntry(memory_mb=4096, ephemeral_storage_mb=2048, timeout_s=10)
    with pytest.raises(ImportRefused, match="so every cold start times out; set"):
        check(400, 200, serving)


def test_a_warm_start_setting_takes_init_out_of_the_request() -> None:
    warm = {"min": 1, "max": 2}
    serving = ServingEntry(
        memory_mb=4096, ephemeral_storage_mb=2048, timeout_s=10, provisioned_concurrency=warm
    )
    assert check(400, 200, serving) == []
    # Past even the 130 s that provisioned concurrency allows: refused, make it smaller.
    with pytest.raises(ImportRefused, match="over the 130 s init that provisioned concurrency"):
        check(
            5000,  # about 151 s to fetch and load
            2500,
            serving.model_copy(update={"memory_mb": 10240, "ephemeral_storage_mb": 10240}),
        )


def test_external_weights_are_memory_mapped_and_get_no_graph_cache() -> None:
    """A graph over the threshold keeps its weights in model.onnx.data: onnxruntime maps them
    (about 1.05x, docs/serving.md "Large graphs") and the function caches no optimised copy."""
    from modelfn.budget import EXTERNAL_FACTOR, version_budget

    sizes = {"model.onnx": 1 * MB, "model.onnx.data": 1000 * MB, "manifest.json": 4096}
    serving = ServingEntry(memory_mb=4096, ephemeral_storage_mb=4096)
    budget = version_budget(sizes, serving)
    assert round(budget.disk_mb) == 1001  # the files, and no optimised-graph cache
    assert round(budget.memory_mb) == round(BASE_MB + SESSION_FACTOR + EXTERNAL_FACTOR * 1000)
    one_file = version_budget({"model.onnx": 1001 * MB}, serving)
    assert round(one_file.disk_mb) == 2002 and one_file.memory_mb > 4 * 1000
    # Mapped weights load faster than a graph parsed whole (the size sweep's bare session).
    from modelfn.budget import (
        BASE_INIT_S,
        EXTERNAL_SESSION_MB_S,
        FETCH_MB_S,
        SESSION_MB_S,
    )

    fetch_s = budget.disk_mb / FETCH_MB_S
    assert budget.init_s == pytest.approx(
        BASE_INIT_S + fetch_s + 1 / SESSION_MB_S + 1000 / EXTERNAL_SESSION_MB_S, rel=1e-3
    )
    assert one_file.init_s > budget.init_s


def test_weights_the_zip_function_never_opens_are_not_counted() -> None:
    """The zip function fetches no safetensors (UNREAD_BY): /tmp holds the graph and its cache."""
    from modelfn.budget import version_budget

    sizes = {"model.onnx": 300 * MB, "model.safetensors": 300 * MB}
    budget = version_budget(sizes, ServingEntry(memory_mb=4096, ephemeral_storage_mb=2048))
    assert round(budget.disk_mb) == 600


def test_an_int8_function_counts_its_int8_graph_not_the_fp32_one() -> None:
    """At precision int8 the function fetches model.int8.onnx and never model.onnx (unread_by):
    /tmp, memory and init follow the int8 graph."""
    from modelfn.budget import version_budget

    sizes = {"model.onnx": 400 * MB, "model.int8.onnx": 100 * MB, "model.safetensors": 400 * MB}
    big = ServingEntry(memory_mb=4096, ephemeral_storage_mb=2048)
    fp32 = version_budget(sizes, big)
    int8 = version_budget(sizes, big.model_copy(update={"precision": "int8"}))
    assert round(fp32.disk_mb) == 800 and round(int8.disk_mb) == 200  # the graph and its cache
    assert round(int8.memory_mb) == round(BASE_MB + SESSION_FACTOR * 100)
    assert int8.init_s < fp32.init_s
