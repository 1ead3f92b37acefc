"""Canary rollouts in the function: both versions held, each request sent to one by the canary's
weight, and the answer, the log line and the per-version metrics name the version that answered."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mangum import Mangum

from functions.app import create_app
from functions.model_loader import ModelSlot
from functions.settings import FunctionSettings
from modelfn.artifact import ONNX_FILE, file_key
from modelfn.store import LocalStore, publish_artifact, set_alias
from tests.functions.conftest import MODEL, TinyModel, build_tiny_model, call, random_pixels

PREDICT = f"/models/{MODEL}/predict"
WEIGHT = 20  # percent of requests to the canary
REQUESTS = 400


@pytest.fixture
def stable_and_canary(store: LocalStore, tmp_path: Path) -> tuple[TinyModel, TinyModel]:
    stable = build_tiny_model(tmp_path / "stable", seed=1)
    canary = build_tiny_model(tmp_path / "canary", seed=2)
    publish_artifact(store, stable.folder)
    publish_artifact(store, canary.folder, aliases=())
    set_alias(
        store,
        MODEL,
        "latest",
        stable.manifest.version,
        canary=canary.manifest.version,
        weight=WEIGHT,
    )
    return stable, canary


def handler_with(settings: FunctionSettings, seed: int = 7) -> tuple[Mangum, ModelSlot]:
    slot = ModelSlot(settings, rng=random.Random(seed))
    slot.load()
    return Mangum(create_app(settings, slot), lifespan="off"), slot


def request_lines(stdout: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("message") == "request"]


def top_label(model: TinyModel, pixels: np.ndarray) -> str:
    return str(model.manifest.labels[int(np.argmax(model.probabilities(pixels[None])[0]))])


def test_requests_split_by_weight_and_each_answer_names_the_version_that_gave_it(
    stable_and_canary: tuple[TinyModel, TinyModel],
    settings: FunctionSettings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stable, canary = stable_and_canary
    by_version = {stable.manifest.version: stable, canary.manifest.version: canary}
    handler, slot = handler_with(settings)
    assert slot.canary is not None and slot.canary_weight == WEIGHT
    capsys.readouterr()

    pixels = random_pixels(REQUESTS, seed=3)
    answered: list[str] = []
    disagreements = 0
    for image in pixels:
        reply = call(handler, "POST", PREDICT, {"inputs": [image.tolist()]})
        assert reply.status == 200, reply.body
        version = reply.json()["version"]
        # The answer is that version's own: its label is what the version's numpy twin says.
        assert reply.json()["outputs"][0]["label"] == top_label(by_version[version], image)
        disagreements += top_label(stable, image) != top_label(canary, image)
        answered.append(version)
    assert disagreements > REQUESTS // 4  # the two versions are told apart by their answers

    # Binomial(400, 0.2): mean 80, sd 8; 4.5 sd either side fails a fair split once in ~150k.
    to_canary = answered.count(canary.manifest.version)
    assert 44 <= to_canary <= 116, to_canary
    assert set(answered) == set(by_version)

    lines = request_lines(capsys.readouterr().out)
    assert [line["version"] for line in lines] == answered
    for line in lines:
        (directive, *_) = line["_aws"]["CloudWatchMetrics"]
        assert ["service", "model", "version"] in directive["Dimensions"]


def test_oip_version_paths_reach_either_version_by_name(
    stable_and_canary: tuple[TinyModel, TinyModel], settings: FunctionSettings
) -> None:
    stable, canary = stable_and_canary
    handler, _ = handler_with(settings)
    for model in (stable, canary):
        version = model.manifest.version
        reply = call(handler, "GET", f"/v2/models/{MODEL}/versions/{version}/ready")
        assert reply.status == 200, reply.body
    reply = call(handler, "GET", f"/v2/models/{MODEL}/versions/20200101T000000Z-00000000/ready")
    assert reply.status == 404
    assert stable.manifest.version in reply.json()["error"]
    assert canary.manifest.version in reply.json()["error"]


def test_a_canary_the_memory_cannot_hold_beside_the_stable_is_not_served(
    stable_and_canary: tuple[TinyModel, TinyModel],
    settings: FunctionSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stable, canary = stable_and_canary
    # 128 MB: less than the process alone (modelfn/budget.py BASE_MB), so never two sessions.
    handler, slot = handler_with(settings.model_copy(update={"memory_mb": 128}))
    assert slot.canary is None
    assert slot.canary_refused is not None
    assert "serving.memory_mb = 128" in slot.canary_refused
    assert f"canary {canary.manifest.version} not served" in caplog.text
    versions = {
        call(handler, "POST", PREDICT, {"inputs": [image.tolist()]}).json()["version"]
        for image in random_pixels(40, seed=4)
    }
    assert versions == {stable.manifest.version}


def test_the_function_follows_a_canary_starting_and_ending(
    store: LocalStore, settings: FunctionSettings, tmp_path: Path
) -> None:
    stable = build_tiny_model(tmp_path / "stable", seed=1)
    canary = build_tiny_model(tmp_path / "canary", seed=2)
    publish_artifact(store, stable.folder)
    publish_artifact(store, canary.folder, aliases=())
    handler, slot = handler_with(settings.model_copy(update={"alias_ttl_s": 0}))
    assert slot.canary is None

    set_alias(
        store, MODEL, "latest", stable.manifest.version, canary=canary.manifest.version, weight=50
    )
    versions = {
        call(handler, "POST", PREDICT, {"inputs": [image.tolist()]}).json()["version"]
        for image in random_pixels(40, seed=5)
    }
    assert versions == {stable.manifest.version, canary.manifest.version}

    set_alias(store, MODEL, "latest", canary.manifest.version)  # the canary promoted, whole
    versions = {
        call(handler, "POST", PREDICT, {"inputs": [image.tolist()]}).json()["version"]
        for image in random_pixels(20, seed=6)
    }
    assert versions == {canary.manifest.version}
    assert slot.canary is None


def test_a_canary_that_fails_to_load_leaves_the_stable_serving_and_is_retried(
    stable_and_canary: tuple[TinyModel, TinyModel], store: LocalStore, settings: FunctionSettings
) -> None:
    stable, canary = stable_and_canary
    graph = store.root / file_key(MODEL, canary.manifest.version, ONNX_FILE)
    good = graph.read_bytes()
    graph.write_bytes(b"not the graph the manifest describes")
    handler, slot = handler_with(settings.model_copy(update={"alias_ttl_s": 0}))
    assert slot.canary is None
    assert slot.canary_refused is not None and "IntegrityError" in slot.canary_refused
    versions = {
        call(handler, "POST", PREDICT, {"inputs": [image.tolist()]}).json()["version"]
        for image in random_pixels(20, seed=8)
    }
    assert versions == {stable.manifest.version}

    graph.write_bytes(good)  # repaired: the next alias check loads it
    versions = {
        call(handler, "POST", PREDICT, {"inputs": [image.tolist()]}).json()["version"]
        for image in random_pixels(40, seed=9)
    }
    assert versions == {stable.manifest.version, canary.manifest.version}
