"""Live alias moves: a warm function follows promote and rollback within its TTL, never fails a
request while it does, and every response names the version that answered."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from mangum import Mangum

from functions.app import create_app
from functions.model_loader import ModelSlot, load_model
from functions.settings import FunctionSettings
from modelfn.artifact import ONNX_FILE, FileEntry, file_key
from modelfn.store import ArtifactStore, LocalStore, publish_artifact, set_alias
from modelfn.store.base import Tagged
from tests.functions.conftest import MODEL, TinyModel, build_tiny_model, call, random_pixels

PREDICT = f"/models/{MODEL}/predict"
BODY = {"inputs": [random_pixels(1)[0].tolist()]}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStore:
    """The store, counting conditional GETs and how many found the object unchanged."""

    def __init__(self, inner: ArtifactStore) -> None:
        self.inner = inner
        self.checks = 0
        self.unchanged = 0

    def get_if_changed(self, key: str, etag: str | None) -> Tagged | None:
        self.checks += 1
        found = self.inner.get_if_changed(key, etag)
        self.unchanged += found is None
        return found

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)


@pytest.fixture
def two_versions(store: LocalStore, tmp_path: Path) -> tuple[TinyModel, TinyModel]:
    old = build_tiny_model(tmp_path / "old", seed=1)
    new = build_tiny_model(tmp_path / "new", seed=2)
    assert old.manifest.version != new.manifest.version
    publish_artifact(store, old.folder)
    return old, new


def predict_version(handler: Mangum) -> str:
    reply = call(handler, "POST", PREDICT, BODY)
    assert reply.status == 200, reply.body
    version: str = reply.json()["version"]
    return version


def test_promote_then_rollback_reach_a_warm_function_within_the_ttl(
    store: LocalStore, settings: FunctionSettings, two_versions: tuple[TinyModel, TinyModel]
) -> None:
    old, new = two_versions
    clock = FakeClock()
    counting = CountingStore(store)
    slot = ModelSlot(settings.model_copy(update={"alias_ttl_s": 60}), clock=clock, store=counting)  # type: ignore[arg-type]
    slot.load()
    handler = Mangum(create_app(slot.settings, slot), lifespan="off")
    assert predict_version(handler) == old.manifest.version

    publish_artifact(store, new.folder)  # moves `latest`
    clock.now += 30
    assert predict_version(handler) == old.manifest.version  # within the TTL: not checked yet
    assert counting.checks == 0
    clock.now += 30
    assert predict_version(handler) == new.manifest.version
    assert counting.checks == 1

    clock.now += 60
    assert predict_version(handler) == new.manifest.version
    assert (counting.checks, counting.unchanged) == (2, 1)  # a 304: nothing was transferred

    set_alias(store, MODEL, "latest", old.manifest.version)  # the rollback: no redeploy
    clock.now += 60
    assert predict_version(handler) == old.manifest.version
    oip = call(handler, "GET", f"/v2/models/{MODEL}").json()
    assert oip["versions"] == [old.manifest.version]


def test_requests_in_flight_finish_on_the_version_they_started_with(
    store: LocalStore, settings: FunctionSettings, two_versions: tuple[TinyModel, TinyModel]
) -> None:
    old, new = two_versions
    clock = FakeClock()
    slot = ModelSlot(settings, clock=clock)
    slot.load()
    in_flight = slot.get()  # what a request resolved at its start
    publish_artifact(store, new.folder)
    clock.now += settings.alias_ttl_s
    assert slot.get().manifest.version == new.manifest.version
    # The old model is still whole for the request that holds it.
    answer = in_flight.predict(BODY["inputs"], {})
    assert in_flight.manifest.version == old.manifest.version
    assert len(answer) == 1


def test_a_move_to_a_broken_version_keeps_the_old_one_and_retries_after_the_ttl(
    store: LocalStore, settings: FunctionSettings, two_versions: tuple[TinyModel, TinyModel]
) -> None:
    old, new = two_versions
    clock = FakeClock()
    slot = ModelSlot(settings, clock=clock)
    slot.load()
    handler = Mangum(create_app(settings, slot), lifespan="off")
    publish_artifact(store, new.folder)
    graph = store.root / file_key(MODEL, new.manifest.version, ONNX_FILE)
    good = graph.read_bytes()
    graph.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # tampered after publishing

    clock.now += settings.alias_ttl_s
    assert predict_version(handler) == old.manifest.version  # refused: the old one answers
    clock.now += 1
    assert predict_version(handler) == old.manifest.version  # no retry before the TTL

    graph.write_bytes(good)
    clock.now += settings.alias_ttl_s
    assert predict_version(handler) == new.manifest.version


def test_a_pinned_version_never_reads_the_alias(
    store: LocalStore, settings: FunctionSettings, two_versions: tuple[TinyModel, TinyModel]
) -> None:
    old, new = two_versions
    clock = FakeClock()
    counting = CountingStore(store)
    pinned = settings.model_copy(update={"alias": old.manifest.version, "alias_ttl_s": 0})
    slot = ModelSlot(pinned, clock=clock, store=counting)  # type: ignore[arg-type]
    slot.load()
    publish_artifact(store, new.folder)
    clock.now += 3600
    assert slot.get().manifest.version == old.manifest.version
    assert counting.checks == 0


def test_moves_while_requests_run_fail_no_request(
    store: LocalStore, settings: FunctionSettings, two_versions: tuple[TinyModel, TinyModel]
) -> None:
    """A second thread promotes and rolls back over and over while requests run back to back
    with a TTL of zero (a check per request): every request answers 200 with a published version."""
    old, new = two_versions
    publish_artifact(store, new.folder, aliases=())
    versions = [old.manifest.version, new.manifest.version]
    handler = Mangum(create_app(settings.model_copy(update={"alias_ttl_s": 0})), lifespan="off")
    stop = threading.Event()
    moves = 0

    def mover() -> None:
        nonlocal moves
        while not stop.is_set():
            set_alias(store, MODEL, "latest", versions[moves % 2 == 0])
            moves += 1

    thread = threading.Thread(target=mover)
    thread.start()
    try:
        answered = [predict_version(handler) for _ in range(60)]
    finally:
        stop.set()
        thread.join()
    assert set(answered) <= set(versions)
    assert set(answered) == set(versions), f"the function never followed {moves} moves"


def test_load_model_reuses_the_verified_copy_in_the_cache(
    store: LocalStore, settings: FunctionSettings, published: TinyModel
) -> None:
    counting = CountingStore(store)
    load_model(settings, counting)  # type: ignore[arg-type]
    downloads: list[str] = []
    counting.inner = DownloadRecorder(store, downloads)  # type: ignore[assignment]
    again = load_model(settings, counting)  # type: ignore[arg-type]
    assert again.manifest.version == published.manifest.version
    assert downloads == []  # only the alias was read


class DownloadRecorder:
    def __init__(self, inner: ArtifactStore, downloads: list[str]) -> None:
        self.inner, self.downloads = inner, downloads

    def download(self, key: str, path: Path, expected: FileEntry | None = None) -> FileEntry:
        self.downloads.append(key)
        return self.inner.download(key, path, expected)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)
