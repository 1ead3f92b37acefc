"""Canary rollouts end to end, on this machine: two versions of a real (tiny) model published,
real CIFAR-10 test images sent through the function's Lambda handler, its request lines written to
the function log as `modelfn serve` writes them, and `modelfn rollout --check` deciding on them
with nobody else touching the alias."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mangum import Mangum
from numpy.typing import NDArray
from safetensors.numpy import save as save_safetensors

from functions.app import create_app
from functions.model_loader import ModelSlot
from functions.settings import FunctionSettings
from modelfn.artifact import read_manifest
from modelfn.registry import REPO_ROOT, load_registry
from modelfn.store import LocalStore, publish_artifact, read_alias
from tests.functions.conftest import MODEL, TinyModel, build_tiny_model, call
from tests.support.manifests import write_artifact
from tests.support.user_data import cifar_test_images
from tools.cli import main
from tools.rollout import DECISIONS_LOG, check

PREDICT = f"/models/{MODEL}/predict"
WEIGHT = 30  # percent of requests to the canary
REQUESTS = 200  # the shared data's CIFAR-10 sample; the canary answers ~60 of them
MIN_REQUESTS = 40  # fewer canary answers than this, and the checker holds


def failing_on_bright_images(weight: NDArray[np.float32], bias: NDArray[np.float32]) -> bytes:
    """The linear classifier's graph, broken for a class of inputs: an image brighter than the
    normalisation's mean (its normalised pixels average above 0) indexes a one-element tensor at
    1000, which onnxruntime refuses at run time, as a bad export can fail on some inputs only."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["input"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "weight"], ["scores"]),
            helper.make_node("Add", ["scores", "bias"], ["clean"]),
            helper.make_node("ReduceMean", ["input"], ["brightness"], axes=[1, 2, 3], keepdims=0),
            helper.make_node("Greater", ["brightness", "zero"], ["bright"]),
            helper.make_node("Cast", ["bright"], ["index"], to=TensorProto.INT64),
            helper.make_node("Mul", ["index", "thousand"], ["far"]),
            helper.make_node("Gather", ["one", "far"], ["picked"], axis=0),  # [N]
            helper.make_node("Unsqueeze", ["picked", "axis1"], ["column"]),  # [N, 1]
            helper.make_node("Mul", ["column", "zero"], ["nothing"]),
            helper.make_node("Add", ["clean", "nothing"], ["logits"]),
        ],
        "linear-failing-on-bright",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", int(bias.shape[0])])],
        initializer=[
            numpy_helper.from_array(weight, "weight"),
            numpy_helper.from_array(bias, "bias"),
            numpy_helper.from_array(np.zeros((), np.float32), "zero"),
            numpy_helper.from_array(np.array(1000, np.int64), "thousand"),
            numpy_helper.from_array(np.zeros((1,), np.float32), "one"),
            numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def build_failing_model(root: Path, seed: int) -> TinyModel:
    rng = np.random.default_rng(seed)
    weight = rng.normal(0.0, 0.02, (3 * 32 * 32, 10)).astype(np.float32)
    bias = rng.normal(0.0, 0.1, (10,)).astype(np.float32)
    folder = write_artifact(
        root,
        name=MODEL,
        weights=save_safetensors({"weight": weight, "bias": bias}),
        onnx=failing_on_bright_images(weight, bias),
    )
    return TinyModel(folder, read_manifest(folder), weight, bias)


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """models.toml with the cifar10-cnn's canary limits stated: 1% server errors, 30 min bake,
    judged on MIN_REQUESTS or more."""
    path = tmp_path / "models.toml"
    path.write_text(
        (REPO_ROOT / "models.toml").read_text(encoding="utf-8")
        + "\n[models.cifar10-cnn.canary]\nmax_error_rate = 0.01\nbake_minutes = 30\n"
        f"min_requests = {MIN_REQUESTS}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("MODELFN_REGISTRY", str(path))
    return path


def function(store: LocalStore, tmp_path: Path) -> Mangum:
    """The function's Lambda handler, following `latest` on every request (TTL 0), with the
    model's memory from models.toml (room for both versions)."""
    settings = FunctionSettings(
        model=MODEL,
        store_uri=str(store.root),
        cache_dir=tmp_path / "cache",
        alias_ttl_s=0,
        memory_mb=load_registry().get(MODEL).serving.memory_mb,
    )
    slot = ModelSlot(settings, rng=random.Random(23))
    slot.load()
    assert slot.canary is not None, slot.canary_refused
    return Mangum(create_app(settings, slot), lifespan="off")


def send_real_images(
    handler: Mangum, count: int, log: Path, capsys: pytest.CaptureFixture[str]
) -> list[dict[str, Any]]:
    """Send `count` real CIFAR-10 test images through the handler, one per request, and append
    its stdout (the request lines) to `log` as `modelfn serve` does; returns the answers."""
    images, _, _ = cifar_test_images(count)
    capsys.readouterr()
    answers = []
    for image in images:
        reply = call(handler, "POST", PREDICT, {"inputs": [image.tolist()]})
        answers.append({"status": reply.status, **reply.json()})
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as fh:
        fh.write(capsys.readouterr().out)
    return answers


def start_canary(store: LocalStore, stable: TinyModel, canary: TinyModel) -> None:
    publish_artifact(store, stable.folder)
    publish_artifact(store, canary.folder, aliases=())
    argv = ["alias", MODEL, canary.manifest.version, "--canary", str(WEIGHT)]
    assert main([*argv, "--store", str(store.root)]) == 0


def decisions(logs: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (logs / DECISIONS_LOG).read_text().splitlines()]


def test_a_canary_failing_on_bright_images_is_rolled_back_by_the_checker(
    registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, logs = LocalStore(tmp_path / "store"), tmp_path / "logs"
    stable = build_tiny_model(tmp_path / "stable", seed=1)
    bad = build_failing_model(tmp_path / "bad", seed=2)
    start_canary(store, stable, bad)

    handler = function(store, tmp_path)
    answers = send_real_images(handler, REQUESTS, logs / f"{MODEL}.log", capsys)
    stable_v, bad_v = stable.manifest.version, bad.manifest.version
    failed = [a for a in answers if a["status"] >= 500]
    # The bad version fails on a class of the real images, and only the bad version fails.
    assert failed and all(a["status"] == 200 for a in answers if a.get("version") == stable_v)
    assert sum(a.get("version") == bad_v for a in answers) > 0  # it answered the others

    args = ["rollout", MODEL, "--store", str(store.root), "--logs", str(logs)]
    assert main(args) == 0  # the figures, nothing moved
    out = capsys.readouterr().out
    assert f"serves {stable_v} + canary {bad_v} at {WEIGHT}%" in out
    assert read_alias(store, MODEL, "latest").canary is not None

    assert main([*args, "--check"]) == 0
    out = capsys.readouterr().out
    assert "rollback: canary" in out and "over max_error_rate = 1.00%" in out
    record = read_alias(store, MODEL, "latest")
    assert (record.version, record.canary) == (stable_v, None)
    (decision,) = decisions(logs)
    assert (decision["action"], decision["canary"], decision["stable"]) == (
        "rollback",
        bad_v,
        stable_v,
    )

    # The function follows the rollback: every answer is the stable version's again.
    answers = send_real_images(handler, 50, logs / f"{MODEL}.log", capsys)
    assert {(a["status"], a["version"]) for a in answers} == {(200, stable_v)}


def test_a_good_canary_is_held_through_its_bake_and_then_promoted(
    registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, logs = LocalStore(tmp_path / "store"), tmp_path / "logs"
    stable = build_tiny_model(tmp_path / "stable", seed=1)
    good = build_tiny_model(tmp_path / "good", seed=2)
    start_canary(store, stable, good)

    handler = function(store, tmp_path)
    answers = send_real_images(handler, REQUESTS, logs / f"{MODEL}.log", capsys)
    assert all(a["status"] == 200 for a in answers)
    good_v = good.manifest.version

    args = ["rollout", MODEL, "--store", str(store.root), "--logs", str(logs), "--check"]
    assert main(args) == 0  # within its limits, but its 30 min bake has not passed
    assert "hold: canary" in capsys.readouterr().out
    assert read_alias(store, MODEL, "latest").canary is not None

    entry = load_registry().get(MODEL)
    began = read_alias(store, MODEL, "latest").updated_at
    log, decided = logs / f"{MODEL}.log", logs / DECISIONS_LOG
    decision = check(
        store, entry, "latest", log, now=began + timedelta(minutes=31), decisions_log=decided
    )
    assert decision.action == "promote", decision.reason
    record = read_alias(store, MODEL, "latest")
    assert (record.version, record.canary) == (good_v, None)
    assert [d["action"] for d in decisions(logs)] == ["hold", "promote"]
    answers = send_real_images(handler, 50, log, capsys)
    assert {(a["status"], a["version"]) for a in answers} == {(200, good_v)}


def test_rollout_on_a_stage_reads_cloudwatch_and_checks_as_the_stage_checker(
    registry: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.functions.test_canary_checker import FakeCloudWatch

    store = LocalStore(tmp_path / "store")
    stable = publish_artifact(
        store, write_artifact(tmp_path / "a", weights=b"a"), aliases=("prod",)
    )
    canary = publish_artifact(store, write_artifact(tmp_path / "b", weights=b"b"), aliases=())
    flags = ["--stage", "prod", "--store", str(store.root)]
    assert main(["promote", MODEL, canary.version, *flags, "--canary", "5"]) == 0
    cloudwatch = FakeCloudWatch(
        {stable.version: (1900, 0, 11.0, 40.0), canary.version: (100, 7, 12.0, 41.0)}
    )
    monkeypatch.setattr("tools.rollout.cloudwatch_client", lambda: cloudwatch)
    capsys.readouterr()

    assert main(["rollout", MODEL, *flags]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [stable.version, "stable", "1900", "0", "11.0", "40.0"] in rows
    assert [canary.version, "canary", "100", "7", "12.0", "41.0"] in rows
    assert read_alias(store, MODEL, "prod").canary is not None

    assert main(["rollout", MODEL, *flags, "--check"]) == 0
    assert "rollback: canary" in capsys.readouterr().out
    record = read_alias(store, MODEL, "prod")
    assert (record.version, record.canary) == (stable.version, None)
