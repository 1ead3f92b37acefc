"""Loading at init, the 503 while a model cannot load, recovery, and refusing tampered files."""

from __future__ import annotations

import shutil
from pathlib import Path

import boto3
import pytest
from mangum import Mangum
from moto import mock_aws

from functions.app import create_app
from functions.model_loader import LoadedModel, ModelSlot, load_model
from functions.onnx_session import create_session
from functions.settings import FunctionSettings
from modelfn.artifact import ONNX_FILE, Alias, FileEntry, IntegrityError, file_key
from modelfn.store import ArtifactStore, LocalStore, S3Store, publish_artifact
from tests.functions.conftest import MODEL, TinyModel, build_tiny_model, call, random_pixels

PREDICT = f"/models/{MODEL}/predict"
MODEL_ROUTES = [
    ("POST", PREDICT, {"inputs": [random_pixels(1)[0].tolist()]}),
    ("POST", f"/v2/models/{MODEL}/infer", {"inputs": []}),
    ("GET", f"/v2/models/{MODEL}", None),
    ("GET", f"/v2/models/{MODEL}/ready", None),
    ("GET", "/v2/health/ready", None),
]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_load_model_fetches_verifies_and_builds_a_session(
    published: TinyModel, settings: FunctionSettings
) -> None:
    model = load_model(settings)
    assert model.manifest == published.manifest
    assert model.folder == settings.cache_dir / MODEL / published.manifest.version
    batch = published.normalise(random_pixels(3))
    logits = model.run({"input": batch})["logits"]
    assert logits.shape == (3, 10)
    assert logits == pytest.approx(published.logits(batch), abs=1e-4)


def test_every_model_route_answers_503_with_retry_after_while_the_store_is_empty(
    store: LocalStore, settings: FunctionSettings
) -> None:
    handler = Mangum(create_app(settings), lifespan="off")
    for method, path, body in MODEL_ROUTES:
        reply = call(handler, method, path, body)
        assert reply.status == 503, path
        assert int(reply.headers["retry-after"]) >= 1
        assert reply.json() == {
            "error": f"model '{MODEL}' is not loaded: no version is published under alias "
            "'latest'; the function retries the load, try again after Retry-After seconds"
        }
    assert call(handler, "GET", "/v2/health/live").json() == {"live": True}


def test_a_failed_load_is_retried_at_most_once_per_interval_then_recovers(
    store: LocalStore, tiny: TinyModel, settings: FunctionSettings
) -> None:
    clock = FakeClock()
    attempts: list[float] = []

    def counting_loader(
        s: FunctionSettings, store: ArtifactStore, pointer: Alias | None
    ) -> LoadedModel:
        attempts.append(clock.now)
        return load_model(s, store, pointer)

    slot = ModelSlot(settings, loader=counting_loader, clock=clock)
    slot.load()  # the init-time attempt
    handler = Mangum(create_app(settings, slot), lifespan="off")
    publish_artifact(store, tiny.folder)

    clock.now += 10  # within load_retry_s (60): no new attempt, even though the model is there
    reply = call(handler, "GET", f"/v2/models/{MODEL}/ready")
    assert reply.status == 503
    assert reply.headers["retry-after"] == "50"
    assert len(attempts) == 1

    clock.now += 50
    reply = call(handler, "GET", f"/v2/models/{MODEL}/ready")
    assert (reply.status, reply.json()) == (200, {"name": MODEL, "ready": True})
    assert len(attempts) == 2
    assert call(handler, "POST", PREDICT, MODEL_ROUTES[0][2]).status == 200
    assert len(attempts) == 2  # a loaded model is never reloaded


def test_a_later_request_loads_a_model_published_after_init(
    store: LocalStore, tiny: TinyModel, settings: FunctionSettings
) -> None:
    settings = settings.model_copy(update={"load_retry_s": 0})
    handler = Mangum(create_app(settings), lifespan="off")
    assert call(handler, "GET", f"/v2/models/{MODEL}").status == 503
    publish_artifact(store, tiny.folder)
    reply = call(handler, "GET", f"/v2/models/{MODEL}")
    assert reply.status == 200
    assert reply.json()["versions"] == [tiny.manifest.version]


def test_an_unpublished_version_is_named_in_the_503(
    published: TinyModel, settings: FunctionSettings
) -> None:
    pinned = settings.model_copy(update={"alias": "20200101T000000Z-00000000"})
    reply = call(Mangum(create_app(pinned), lifespan="off"), "GET", f"/v2/models/{MODEL}")
    assert reply.status == 503
    assert (
        "not loaded: version '20200101T000000Z-00000000' is not published" in reply.json()["error"]
    )


def assert_private(body: bytes, *secrets: str) -> None:
    """The 503 body names none of the internals (store, paths, exception types)."""
    text = body.decode()
    for secret in secrets:
        assert secret not in text, f"{secret!r} leaked into {text}"


def test_a_tampered_store_file_is_refused_and_never_cached(
    published: TinyModel,
    store: LocalStore,
    settings: FunctionSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stored = store.root / file_key(MODEL, published.manifest.version, ONNX_FILE)
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0xFF  # same size, different bytes
    stored.write_bytes(bytes(data))

    app = create_app(settings)
    reply = call(Mangum(app, lifespan="off"), "POST", PREDICT, MODEL_ROUTES[0][2])
    assert reply.status == 503
    assert "not loaded: the published artifact failed its integrity check" in reply.json()["error"]
    assert_private(reply.body, "IntegrityError", "sha256", str(store.root), str(settings.cache_dir))
    # The operator gets the whole cause, in the slot and in the function's log.
    assert "IntegrityError" in app.state.slot.error and "sha256" in app.state.slot.error
    assert "refusing to load" in caplog.text and str(settings.cache_dir) in caplog.text
    assert not (settings.cache_dir / MODEL / published.manifest.version).exists()


def test_a_tampered_cached_file_is_replaced_by_a_verified_download(
    published: TinyModel, settings: FunctionSettings
) -> None:
    load_model(settings)  # fills the cache, as a previous init in the same sandbox would
    cached = settings.cache_dir / MODEL / published.manifest.version / ONNX_FILE
    good = cached.read_bytes()
    cached.write_bytes(good[:-1] + bytes([good[-1] ^ 0xFF]))

    handler = Mangum(create_app(settings), lifespan="off")
    assert call(handler, "POST", PREDICT, MODEL_ROUTES[0][2]).status == 200
    assert cached.read_bytes() == good


def test_tampered_cache_and_store_together_are_refused(
    published: TinyModel, store: LocalStore, settings: FunctionSettings
) -> None:
    load_model(settings)
    version = published.manifest.version
    for path in (
        settings.cache_dir / MODEL / version / ONNX_FILE,
        store.root / file_key(MODEL, version, ONNX_FILE),
    ):
        path.write_bytes(path.read_bytes() + b"\0")
    app = create_app(settings)
    reply = call(Mangum(app, lifespan="off"), "GET", f"/v2/models/{MODEL}")
    assert reply.status == 503
    assert "integrity check" in reply.json()["error"]
    assert_private(reply.body, "refusing to load", str(settings.cache_dir))
    assert "refusing to load" in app.state.slot.error


def test_the_session_refuses_graph_bytes_that_changed_after_the_fetch(
    published: TinyModel, tmp_path: Path
) -> None:
    graph = tmp_path / ONNX_FILE
    shutil.copyfile(published.folder / ONNX_FILE, graph)
    entry = published.manifest.files[ONNX_FILE]
    create_session(graph, entry)  # the verified bytes load
    graph.write_bytes(graph.read_bytes()[:-1] + b"\0")
    with pytest.raises(IntegrityError, match="refusing to load"):
        create_session(graph, FileEntry(sha256=entry.sha256, size=entry.size))


def test_an_unknown_task_is_a_503_whose_log_names_it(
    store: LocalStore, tmp_path: Path, settings: FunctionSettings
) -> None:
    tiny = build_tiny_model(tmp_path / "build")
    manifest_path = tiny.folder / "manifest.json"
    manifest_path.write_text(
        manifest_path.read_text().replace('"image-classification"', '"text-generation"')
    )
    publish_artifact(store, tiny.folder)
    app = create_app(settings)
    reply = call(Mangum(app, lifespan="off"), "GET", f"/v2/models/{MODEL}")
    assert reply.status == 503
    assert (
        "not loaded: the published artifact is not one this function can serve"
        in (reply.json()["error"])
    )
    assert "text-generation" in app.state.slot.error


def test_any_other_load_failure_is_a_generic_503(
    published: TinyModel, settings: FunctionSettings
) -> None:
    def crashing_loader(
        s: FunctionSettings, store: ArtifactStore, pointer: Alias | None
    ) -> LoadedModel:
        raise MemoryError("onnxruntime: failed to allocate 512 MB in /tmp/modelfn/session")

    slot = ModelSlot(settings, loader=crashing_loader)
    slot.load()
    reply = call(Mangum(create_app(settings, slot), lifespan="off"), "GET", f"/v2/models/{MODEL}")
    assert reply.status == 503
    assert "not loaded: the model failed to load;" in reply.json()["error"]
    assert_private(reply.body, "MemoryError", "/tmp", "512 MB")
    assert (
        slot.error == "MemoryError: onnxruntime: failed to allocate 512 MB in /tmp/modelfn/session"
    )


# --- S3 (moto) ------------------------------------------------------------------------------


@pytest.mark.usefixtures("aws_env")
def test_serves_from_s3_and_answers_503_for_a_missing_bucket(
    tiny: TinyModel, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="artifacts")
        publish_artifact(S3Store("artifacts", "models"), tiny.folder)

        settings = FunctionSettings(
            model=MODEL, store_uri="s3://artifacts/models", cache_dir=tmp_path / "cache"
        )
        handler = Mangum(create_app(settings), lifespan="off")
        pixels = random_pixels(2)
        reply = call(handler, "POST", PREDICT, {"inputs": pixels.tolist()})
        assert reply.status == 200
        scores = [out["score"] for out in reply.json()["outputs"]]
        assert scores == pytest.approx(tiny.probabilities(pixels).max(axis=1), abs=1e-5)

        missing = settings.model_copy(update={"store_uri": "s3://no-such-bucket/models"})
        app = create_app(missing)
        reply = call(Mangum(app, lifespan="off"), "POST", PREDICT, {"inputs": []})
        assert reply.status == 503
        assert "not loaded: the artifact store could not be reached" in reply.json()["error"]
        assert_private(reply.body, "no-such-bucket", "s3://", "StoreError")
        assert "no-such-bucket" in app.state.slot.error
        assert "no-such-bucket" in caplog.text


@pytest.mark.usefixtures("aws_env")
def test_an_unreachable_s3_endpoint_is_a_503_whose_log_names_the_endpoint(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = FunctionSettings(
        model=MODEL,
        store_uri="s3://artifacts/models",
        cache_dir=tmp_path / "cache",
        s3_endpoint_url="http://127.0.0.1:9",  # the discard port: nothing listens there
    )
    app = create_app(settings)
    reply = call(Mangum(app, lifespan="off"), "GET", f"/v2/models/{MODEL}")
    assert reply.status == 503
    assert "not loaded: the artifact store could not be reached" in reply.json()["error"]
    assert_private(reply.body, "127.0.0.1", "artifacts", "StoreError")
    assert "127.0.0.1:9" in app.state.slot.error and "127.0.0.1:9" in caplog.text


def test_the_zip_function_fetches_no_weights_it_never_reads(
    cifar_artifact: Path, tmp_path: Path
) -> None:
    from modelfn.artifact import MANIFEST_FILE, WEIGHTS_FILE
    from modelfn.store import fetch_artifact

    store = LocalStore(tmp_path / "store")
    manifest = publish_artifact(store, cifar_artifact)
    assert WEIGHTS_FILE in manifest.files  # a trained version holds the weights beside the graph
    settings = FunctionSettings(
        model=manifest.name, store_uri=str(store.root), cache_dir=tmp_path / "cache"
    )
    model = load_model(settings)
    fetched = {p.name for p in model.folder.iterdir()}
    assert fetched == (set(manifest.files) - {WEIGHTS_FILE}) | {MANIFEST_FILE}
    graph = model.folder / ONNX_FILE
    graph.touch()
    stamp = graph.stat().st_mtime_ns
    # The next init of the same sandbox reuses that folder, checked without the weights.
    assert load_model(settings).folder == model.folder and graph.stat().st_mtime_ns == stamp
    # A reader of every file finds the weights missing and fetches the whole version again.
    _, folder = fetch_artifact(store, manifest.name, "latest", settings.cache_dir)
    assert folder == model.folder and (folder / WEIGHTS_FILE).is_file()
