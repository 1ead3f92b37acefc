"""The benchmark's own logic: its arithmetic, its JSON, and that every server answers real inputs
alike. No test here asserts a timing."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench import cost, stats
from bench.agreement import SCORE_TOLERANCE, disagreement
from bench.peers.imported import IMPORTED, import_models
from bench.report import write_markdown
from bench.results import model_result, targets
from bench.run import layer_parts_mb, main, model_events, package_mb, probe
from modelfn.registry import REPO_ROOT, load_registry


def test_percentiles_match_numpys_linear_interpolation() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 200):
        values = rng.exponential(size=n).tolist()
        for q in (0, 50, 99, 100):
            assert stats.percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert stats.percentile([4.0, 1.0], 50) == 2.5
    with pytest.raises(ValueError):
        stats.percentile([], 50)
    assert stats.summary([3.0, 1.0, 2.0]) == {
        "median": 2.0,
        "p99": pytest.approx(2.98),
        "min": 1.0,
        "max": 3.0,
        "n": 3,
    }
    assert stats.ratio(3.0, 1.5) == 2.0 and math.isinf(stats.ratio(1.0, 0.0))


def test_cost_rounds_each_call_up_to_the_millisecond_and_adds_the_request_price() -> None:
    # 1.2 ms bills as 2 ms: 1e6 calls x (0.2e-6 + 0.0000166667 x 1 GB x 0.002 s)
    assert cost.cost_per_million(1.2, 1024, "x86_64") == pytest.approx(0.20 + 0.0000166667 * 2000)
    assert cost.cost_per_million(1.0, 512, "arm64") == pytest.approx(
        0.20 + 0.0000133334 * 0.5 * 1000
    )
    assert cost.cost_per_million(0.0, 1024, "x86_64") == pytest.approx(0.20)
    with pytest.raises(ValueError):
        cost.cost_per_million(-1, 1024, "x86_64")


def fake_model_result(name: str) -> dict[str, Any]:
    servers = {"modelfn": 1.0, "torch-handler": 3.5}
    return {
        "version": "20260101T000000Z-00000000", "memory_mb": 1024, "answers_agree": True,
        "cold_start_s": {"modelfn": 0.9, "torch-handler": 3.0, "bentoml": 2.7},
        "cold_start_runs_s": {"modelfn": [0.9, 0.8, 1.0], "torch-handler": [3.0, 3.1, 2.9]},
        "cold_start_s3_s": {"modelfn": 1.2, "torch-handler": 3.4}, "rps": {"c1": 150.0, "c4": 170.0, "c16": 160.0},
        "warm_p50_ms": {**servers, "floor": 0.5}, "warm_p99_ms": {**servers, "floor": 0.6},
        "batch16_p50_ms": {**servers, "floor": 4.0}, "peak_rss_mb": {"modelfn": 110.0, "torch-handler": 280.0},
        "cost_per_million_usd": {a: {s: cost.cost_per_million(v, 1024, a) for s, v in servers.items()} for a in cost.GB_SECOND_USD},
        "warm_requests": {"warmup_excluded": 20, "measured": 200},
        "training_throughput": {"examples_per_s": 700.0},
        "training": {"preset": "smoke", "epochs": 20, "seconds": 22.0},
        "package_mb": {"modelfn": 130.5, "torch-handler": 828.0},
    }  # fmt: skip


def test_targets_say_plainly_which_are_met(tmp_path: Path) -> None:
    result = fake_model_result("cifar10-cnn")
    found = targets("cifar10-cnn", result)
    assert found["cold_start_s"]["met"] and found["cold_start_speedup_vs_torch"][
        "value"
    ] == pytest.approx(3.0 / 0.9)
    assert found["warm_p50_ms"] == {"value": 1.0, "limit": 1.25, "met": True}
    assert "warm_p50_ms" not in targets("ptb-lstm", result)  # the warm target is the image model's
    result["targets"] = found
    results = {
        "machine": {"cpu": "x", "cores": 2, "load_avg_1m_start": 0.1, "load_avg_1m_end": 0.2, "os": "Linux",
                    "python_modelfn": "3.12", "python_torch_handler": "3.11.7", "packages": {"onnxruntime": "1"}},
        "date": "2026-11-29T00:00:00+00:00", "seconds": 1.0, "commands": ["make bench"],
        "limits_mb": {"zip_unzipped": 250, "image": 10240},
        "prices": {"source": cost.SOURCE, "read_on": cost.READ_ON}, "models": {"cifar10-cnn": result},
        "package_parts_mb": {"code": 0.7, "layer": 139.9, "tokenizers": 11.3},
    }  # fmt: skip
    page = tmp_path / "benchmarks.md"
    write_markdown(results, page)
    text = page.read_text()
    assert "dependency layer (139.9 MB, tokenizers' 11.3 MB in it)" in text
    assert (
        "| cold start, cached artifact (s, median) | 0.90 | 3.00 | 2.70 | 3.3x | 3.0x |  |" in text
    )
    assert "| warm p50, batch 1 (ms) | 1.00 | 3.50 |  | 3.5x |  | 0.50 |" in text
    assert "| warm_p50_ms | 1.00 | 1.25 | yes |" in text
    assert "| cold start, fetched from S3 (s, median) | 1.20 | 3.40 |  | 2.8x |  |  |" in text


def test_the_deployment_figure_is_a_layer_with_tokenizers_in_it(tmp_path: Path) -> None:
    """modelfn's size is the code asset plus the layer, tokenizers counted in the layer; a layer
    without tokenizers could not serve an imported text model, so it is not measured."""
    code, layer = tmp_path / "code", tmp_path / "layer" / "python"
    for path, size in (
        (code / "functions" / "app.py", 700_000),
        (layer / "numpy" / "core.so", 20_000_000),
        (layer / "tokenizers" / "tokenizers.abi3.so", 11_000_000),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * size)
    assert layer_parts_mb(code, layer) == {"code": 0.7, "layer": 31.0, "tokenizers": 11.0}
    (layer / "tokenizers" / "tokenizers.abi3.so").unlink()
    (layer / "tokenizers").rmdir()
    with pytest.raises(SystemExit, match="has no tokenizers/"):
        layer_parts_mb(code, layer)


def test_the_torch_handler_of_a_hugging_face_model_installs_transformers_too() -> None:
    from types import SimpleNamespace

    from bench.run import TORCH_HANDLER_REQUIREMENTS, installed_mb

    package = {"modelfn": 140.0, "torch-handler": installed_mb(TORCH_HANDLER_REQUIREMENTS)}
    trained = SimpleNamespace(imported=None)
    module = SimpleNamespace(imported=SimpleNamespace(source="torch-module"))
    folder = SimpleNamespace(imported=SimpleNamespace(source="huggingface"))
    assert package_mb(trained, package) == package_mb(module, package) == package
    with_transformers = package_mb(folder, package)
    assert with_transformers["modelfn"] == 140.0
    # transformers' own files (tens of MB) on top of the torch handler's image
    assert with_transformers["torch-handler"] > package["torch-handler"] + 5


def test_models_are_picked_by_name_from_the_trained_and_the_imported_ones() -> None:
    with pytest.raises(SystemExit, match="measurable: .*resnet18-imported, bert-imported"):
        main(["--quick", "--models", "cifar10-cnn,bert-base-uncased"])


def result_from_the_harness(manifest: Any) -> dict[str, Any]:
    """A record built by the harness's own functions from measurements shaped as a run makes them."""
    rng = np.random.default_rng(3)
    servers = ("modelfn", "torch-handler", "bentoml")

    def probe_report(scale: float) -> dict[str, Any]:
        return {
            "batch1": (scale * rng.uniform(1, 2, 50)).tolist(),
            "batch16": (scale * rng.uniform(8, 12, 50)).tolist(),
            "floor_batch1": rng.uniform(0.4, 0.6, 50).tolist(),
            "floor_batch16": rng.uniform(3, 5, 50).tolist(),
            "peak_rss_mb": 100.0 * scale,
            "warmup": 5,
        }

    result = model_result(
        manifest=manifest,
        memory_mb=1024,
        cold={s: rng.uniform(0.5, 3, 3).tolist() for s in servers},
        cold_s3={s: rng.uniform(1, 4, 3).tolist() for s in servers},
        rps={"c1": 150.0, "c4": 170.0, "c16": 160.0},
        warm={s: probe_report(i + 1.0) for i, s in enumerate(servers)},
        repeats=50,
    )
    result["package_mb"] = {"modelfn": 130.5, "torch-handler": 828.0}
    result["targets"] = targets(manifest.name, result)
    return result


def assert_the_shape_other_tools_read(results: dict[str, Any]) -> None:
    assert {"machine", "commands", "models"} <= set(results)
    for name, m in results["models"].items():
        # A model of models.toml, or one the benchmark imports itself, with its origin.
        assert name in load_registry().names() or (name in IMPORTED and "imported" in m)
        assert ("training" in m) != ("imported" in m), name
        assert set(m["rps"]) == {"c1", "c4", "c16"}
        for key in (
            "cold_start_s",
            "cold_start_s3_s",
            "warm_p50_ms",
            "warm_p99_ms",
            "batch16_p50_ms",
            "peak_rss_mb",
            "package_mb",
        ):
            assert {"modelfn", "torch-handler"} <= set(m[key]), (name, key)
        assert "floor" in m["warm_p50_ms"] and set(m["cost_per_million_usd"]) == {"x86_64", "arm64"}


def test_the_harness_builds_the_record_the_report_reads(
    cifar_artifact: Path, tmp_path: Path
) -> None:
    from modelfn.artifact import read_manifest

    manifest = read_manifest(cifar_artifact)
    result = result_from_the_harness(manifest)
    # Medians and percentiles of the runs it was given, not copies of a figure.
    assert result["cold_start_s"]["modelfn"] == stats.percentile(
        result["cold_start_runs_s"]["modelfn"], 50
    )
    assert result["warm_p99_ms"]["torch-handler"] > result["warm_p50_ms"]["torch-handler"]
    assert result["version"] == manifest.version
    assert result["answers_compared"].endswith(f"every score within {SCORE_TOLERANCE:g}")
    results = {
        "machine": {"cpu": "x", "cores": 2, "load_avg_1m_start": 0.1, "load_avg_1m_end": 0.2,
                    "os": "Linux", "python_modelfn": "3.12", "python_torch_handler": "3.11.7",
                    "packages": {"onnxruntime": "1"}},
        "date": "2026-11-29T00:00:00+00:00", "seconds": 1.0, "commands": ["make bench"],
        "limits_mb": {"zip_unzipped": 250, "image": 10240},
        "prices": {"source": cost.SOURCE, "read_on": cost.READ_ON}, "models": {manifest.name: result},
    }  # fmt: skip
    assert_the_shape_other_tools_read(results)
    page = tmp_path / "benchmarks.md"
    write_markdown(results, page)
    assert f"the same real test inputs ({result['answers_compared']})" in page.read_text()


def test_the_committed_results_have_that_shape() -> None:
    latest = REPO_ROOT / "bench" / "results" / "latest.json"
    if not latest.is_file():
        pytest.skip("no bench/results/latest.json yet (make bench writes it)")
    assert_the_shape_other_tools_read(json.loads(latest.read_text()))


def test_the_same_label_with_another_probability_is_a_different_answer() -> None:
    reference = {
        "outputs": [{"label": "cat", "score": 0.61, "top_k": [{"label": "cat", "score": 0.61}]}]
    }
    close = {
        "outputs": [
            {
                "label": "cat",
                "score": 0.61 + SCORE_TOLERANCE / 2,
                "top_k": [{"label": "cat", "score": 0.61}],
            }
        ]
    }
    off = {"outputs": [{"label": "cat", "score": 0.71, "top_k": [{"label": "cat", "score": 0.71}]}]}
    other = {
        "outputs": [{"label": "dog", "score": 0.61, "top_k": [{"label": "dog", "score": 0.61}]}]
    }
    assert disagreement(close, reference) is None
    assert "scores differ by up to 0.1" in str(disagreement(off, reference))
    assert "answers ['dog']" in str(disagreement(other, reference))
    words = {"outputs": [{"next": [{"word": "the", "probability": 0.2}]}]}
    assert "scores differ" in str(
        disagreement({"outputs": [{"next": [{"word": "the", "probability": 0.3}]}]}, words)
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "artifact"),
    [
        ("cifar10-cnn", "cifar_artifact"),
        ("imdb-sentiment", "imdb_artifact"),
        ("ptb-lstm", "ptb_artifact"),
    ],
)
def test_modelfn_and_the_torch_handler_answer_real_inputs_alike(
    name: str, artifact: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from mangum import Mangum

    from bench.peers.torch_handler import create_app as torch_app
    from functions.app import create_app
    from functions.settings import FunctionSettings
    from modelfn.store import open_store
    from modelfn.store.transfer import publish_artifact

    folder = request.getfixturevalue(artifact)
    publish_artifact(open_store(tmp_path / "store"), folder)
    settings = FunctionSettings(
        model=name, store_uri=str(tmp_path / "store"), cache_dir=tmp_path / "cache"
    )
    servers = {
        "modelfn": Mangum(create_app(settings), lifespan="off"),
        "torch": Mangum(torch_app(folder), lifespan="off"),
    }
    events = model_events(name, load_registry().get(name).task)
    for key in ("first", "batch16"):
        bodies = {}
        for server, handler in servers.items():
            response = handler(events[key], type("Context", (), {"function_name": "t"})())
            assert response["statusCode"] == 200, response["body"]
            bodies[server] = json.loads(response["body"])
        assert len(bodies["modelfn"]["outputs"]) == (1 if key == "first" else 16)
        # Labels or next words equal, and every probability within the stated tolerance.
        assert disagreement(bodies["torch"], bodies["modelfn"]) is None


def test_the_probe_reports_the_first_answer_then_warm_times_and_memory(
    tmp_path: Path, cifar_artifact: Path
) -> None:
    import sys

    from modelfn.store import open_store
    from modelfn.store.transfer import publish_artifact

    publish_artifact(open_store(tmp_path / "store"), cifar_artifact)
    events = tmp_path / "events.json"
    events.write_text(json.dumps(model_events("cifar10-cnn", "image-classification")))
    settings = {"MODELFN_MODEL": "cifar10-cnn", "MODELFN_STORE_URI": str(tmp_path / "store"),
                "MODELFN_CACHE_DIR": str(tmp_path / "cache")}  # fmt: skip
    command = ([sys.executable, "-P", str(REPO_ROOT / "bench" / "probe.py"), "bench.peers.torch_lambda:handler"],
               {"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin", **settings})  # fmt: skip
    started = time.perf_counter()
    seconds, body, report = probe(command, events, 1, 3)
    whole = time.perf_counter() - started
    # Spawn to first answer: part of the probe's whole run, not of anything before or after it.
    assert 0 < seconds < whole and body["model"] == "cifar10-cnn" and len(body["outputs"]) == 1
    assert len(report["batch1"]) == 3 and len(report["batch16"]) == 3
    # In MB: a Python process that has loaded numpy, onnxruntime and the model holds tens of
    # them (a figure in KB or GB would be out by a thousand either way).
    assert 30 < report["peak_rss_mb"] < 4096
    assert "floor_batch1" not in report  # the floor is onnxruntime's, measured in modelfn's process


def test_the_bytecode_figure_counts_the_code_assets_own_modules_only(tmp_path: Path) -> None:
    from bench.code_bytecode import read_import_times, without_bytecode

    report = """\
import time: self [us] | cumulative | imported package
import time:     12000 |      40000 |   numpy
import time:      3000 |       3000 |     modelfn.artifact
import time:      2000 |       5000 |   modelfn
import time:      4000 |       4000 |   functions.app
import time:    900000 |     950000 | functions.handler
"""
    # The handler's own 0.9 s is the app and the model load, not compiling; numpy is the layer's.
    assert read_import_times(report) == (0.95, 0.009)
    with pytest.raises(SystemExit, match="functions.handler"):
        read_import_times("import time:      1 |      1 | functions.app\n")
    code = tmp_path / "asset"
    (code / "functions" / "__pycache__").mkdir(parents=True)
    (code / "functions" / "app.py").write_text("x = 1\n")
    (code / "functions" / "__pycache__" / "app.cpython-312.pyc").write_bytes(b"pyc")
    copy = without_bytecode(code, tmp_path / "copy")
    assert [p.relative_to(copy).as_posix() for p in copy.rglob("*")] == [
        "functions",
        "functions/app.py",
    ]


@pytest.mark.parametrize(
    ("name", "source", "data_file"),
    [
        ("resnet18-imported", "torch-module", "cifar-10-batches-py/test_batch"),
        ("bert-imported", "huggingface", "imdb"),
    ],
)
def test_an_imported_model_is_served_alike_by_both_handlers_and_gets_its_row(
    name: str, source: str, data_file: str, tmp_path: Path
) -> None:
    """The benchmark's imported subjects, imported with modelfn import's code: modelfn serves
    each from its graph, the torch handler from the module its user's factory builds (ResNet-18)
    or from transformers' model and tokenizer (BERT); both answer the data set's real test
    inputs alike, and the record says where the version came from."""
    from mangum import Mangum

    from bench.peers.torch_handler import create_app as torch_app
    from functions.app import create_app
    from functions.settings import FunctionSettings
    from modelfn.store import open_store
    from modelfn.store.transfer import fetch_artifact

    if not (REPO_ROOT.parent / "shared" / "data" / data_file).exists():
        pytest.skip(f"{data_file} not found in ../shared/data")
    imported = IMPORTED[name]
    registry, store = import_models([name], tmp_path / "work", log=lambda _: None)
    entry = registry.get(name)
    assert entry.imported and entry.task == imported.task
    assert name not in load_registry().names()  # models.toml stays as it was
    manifest, folder = fetch_artifact(open_store(store), name, "latest", tmp_path / "f")
    assert manifest.imported is not None and manifest.imported.reference == imported.reference
    settings = FunctionSettings(model=name, store_uri=str(store), cache_dir=tmp_path / "cache")
    servers = {
        "modelfn": Mangum(create_app(settings), lifespan="off"),
        "torch": Mangum(torch_app(folder), lifespan="off"),
    }
    events = model_events(name, imported.task, imported.data_subdir)
    bodies = {}
    for server, handler in servers.items():
        response = handler(events["batch16"], type("Context", (), {"function_name": "t"})())
        assert response["statusCode"] == 200, response["body"]
        bodies[server] = json.loads(response["body"])
    assert len(bodies["modelfn"]["outputs"]) == 16
    assert disagreement(bodies["torch"], bodies["modelfn"]) is None

    result = result_from_the_harness(manifest)
    assert result["imported"] == {"source": source, "reference": imported.reference}
    assert "training" not in result and result["training_throughput"] == {}
    results = {
        "machine": {"cpu": "x", "cores": 2, "load_avg_1m_start": 0.1, "load_avg_1m_end": 0.2,
                    "os": "Linux", "python_modelfn": "3.12", "python_torch_handler": "3.11.7",
                    "packages": {"onnxruntime": "1"}},
        "date": "2026-11-29T00:00:00+00:00", "seconds": 1.0, "commands": ["make bench"],
        "limits_mb": {"zip_unzipped": 250, "image": 10240},
        "prices": {"source": cost.SOURCE, "read_on": cost.READ_ON},
        "models": {name: result},
    }  # fmt: skip
    assert_the_shape_other_tools_read(results)
    page = tmp_path / "benchmarks.md"
    write_markdown(results, page)
    text = page.read_text()
    assert f"## {name} (version {manifest.version}, 1024 MB)" in text
    assert (
        f"Imported with modelfn import ({source}: {imported.reference}); no training here" in text
    )


def test_the_probe_reports_its_own_peak_memory_not_its_parents() -> None:
    """A process spawned by a large one (the bench, holding torch and a ResNet export) reports
    its own peak: ru_maxrss would carry the parent's across fork and exec."""
    import subprocess
    import sys

    held = bytearray(256 * 1024 * 1024)
    held[::4096] = b"\1" * len(held[::4096])  # touch every page: resident, not just reserved
    code = "import sys; sys.path.insert(0, 'bench'); from probe import peak_rss_mb; print(peak_rss_mb())"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    own = float(done.stdout)
    assert 1 < own < 100, own  # a bare interpreter: a few MB, far below the parent's 256
    del held
