"""SnapStart hooks: registered with the runtime's library, the client dropped before the snapshot,
randomness re-seeded and the alias read again after a restore."""

from __future__ import annotations

import random

import numpy as np
import pytest
import snapshot_restore_py

from functions import snapstart
from functions.model_loader import ModelSlot
from functions.settings import FunctionSettings
from modelfn.store import LocalStore, publish_artifact
from tests.functions.conftest import TinyModel, build_tiny_model


def run_registered(hooks: list[tuple[object, tuple[object, ...], dict[str, object]]]) -> None:
    for func, args, kwargs in hooks:
        func(*args, **kwargs)  # type: ignore[operator]


def test_hooks_drop_the_client_then_reseed_and_follow_the_alias_after_restore(
    store: LocalStore,
    published: TinyModel,
    settings: FunctionSettings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    monkeypatch.setattr(snapshot_restore_py, "_before_snapshot_registry", [])
    monkeypatch.setattr(snapshot_restore_py, "_after_restore_registry", [])
    slot = ModelSlot(settings)
    slot.load()
    assert snapstart.register_hooks(slot)
    assert slot.store is not None  # the init's client

    run_registered(snapshot_restore_py.get_before_snapshot())
    assert slot.store is None  # nothing holding credentials goes into the snapshot

    # Every sandbox resumed from one snapshot starts with the same random state; the hook
    # re-seeds it, so two restores draw differently.
    random.seed(7)
    np.random.seed(7)
    frozen = (random.random(), np.random.random())
    random.seed(7)
    np.random.seed(7)
    newer = build_tiny_model(tmp_path_factory.mktemp("newer"), seed=5)
    publish_artifact(store, newer.folder)  # moved while the snapshot waited
    run_registered(snapshot_restore_py.get_after_restore())
    assert (random.random(), np.random.random()) != frozen
    # The first request after a restore reads the alias again, whatever the TTL says.
    assert slot.get().manifest.version == newer.manifest.version
    assert slot.store is not None  # a new client, opened on first use


def test_a_restore_retries_a_load_the_snapshot_froze_as_failed(
    store: LocalStore, tiny: TinyModel, settings: FunctionSettings
) -> None:
    # The deploy walk-through deploys first and publishes second: the snapshot is taken after a
    # failed load (nothing published yet), and restored once the model is there.
    now = [1000.0]
    slot = ModelSlot(settings, clock=lambda: now[0])
    slot.load()
    assert slot.model is None and slot.reason is not None
    snapstart.before_snapshot(slot)
    publish_artifact(store, tiny.folder)
    now[0] += 1.0  # restored a second (of the snapshot's clock) later, well inside load_retry_s
    snapstart.after_restore(slot)
    # The first request loads it, instead of 503 until load_retry_s (60 s here) has passed.
    assert slot.get().manifest.version == tiny.manifest.version


def test_a_restore_keeps_a_model_the_snapshot_holds(
    published: TinyModel, settings: FunctionSettings
) -> None:
    loads: list[object] = []
    slot = ModelSlot(settings)
    slot.load()
    held = slot.model
    slot.loader = lambda *args: loads.append(args)  # type: ignore[assignment,return-value]
    snapstart.after_restore(slot)
    assert slot.model is held and not loads  # nothing reloaded; only the alias is read again


def test_without_the_runtime_library_nothing_is_registered(
    settings: FunctionSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # import fails, as off Lambda
    assert snapstart.register_hooks(ModelSlot(settings)) is False
