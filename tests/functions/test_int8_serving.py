"""A function at `serving.precision = "int8"` (MODELFN_PRECISION): it serves the version's
model.int8.onnx through the Lambda handler, never fetches model.onnx, says which graph answered,
and answers 503 with the reason for a version without the graph or with a tampered one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnxruntime as ort
import pytest
from mangum import Mangum

from functions.app import create_app
from functions.settings import FunctionSettings
from functions.tasks import load_task
from modelfn.artifact import (
    INT8_ONNX_FILE,
    MANIFEST_FILE,
    ONNX_FILE,
    WEIGHTS_FILE,
    FileEntry,
    Manifest,
    file_key,
)
from modelfn.registry import load_registry
from modelfn.store import LocalStore, publish_artifact, read_published_manifest
from tests.functions.conftest import call
from tests.support.text_models import SHARED_DATA
from tools.edge_test_data import load_test_data
from tools.int8_version import derive_int8_version

MODEL = "imdb-sentiment"
PREDICT = f"/models/{MODEL}/predict"
REVIEWS = ["a truly wonderful film, moving and funny", "dull, predictable and far too long"]


@pytest.fixture(scope="module")
def versions(imdb_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A store holding the tiny IMDB version (fp32 only) and, under `latest`, its int8 version."""
    root = tmp_path_factory.mktemp("int8")
    store = LocalStore(root / "store")
    source = publish_artifact(store, imdb_artifact)
    entry = load_registry().get(MODEL)
    data = load_test_data(entry, SHARED_DATA, limit=120)
    publish_artifact(store, derive_int8_version(imdb_artifact, entry, data, root / "build"))
    return store.root, source.version


def handler(store: Path, cache: Path, **settings: str) -> Mangum:
    return Mangum(
        create_app(
            FunctionSettings(model=MODEL, store_uri=str(store), cache_dir=cache, **settings)
        ),
        lifespan="off",
    )


def fetched_keys(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every store key a function downloads from now on."""
    keys: list[str] = []
    download = LocalStore.download

    def recording(self: LocalStore, key: str, path: Path, expected: FileEntry | None = None) -> Any:
        keys.append(key)
        return download(self, key, path, expected)

    monkeypatch.setattr(LocalStore, "download", recording)
    return keys


def int8_answers(manifest: Manifest, folder: Path, texts: list[str]) -> list[Any]:
    """What the int8 graph answers for `texts`, run here straight from its file."""
    session = ort.InferenceSession(str(folder / INT8_ONNX_FILE))
    names = [o.name for o in manifest.outputs]

    def run(feeds: dict[str, Any], outputs: list[str] | None = None) -> dict[str, Any]:
        return dict(zip(names, session.run(names, feeds), strict=True))

    outputs = load_task(manifest, folder).predict(run, list(texts), {})
    return [o.model_dump(mode="json") for o in outputs]


def test_an_int8_function_serves_the_int8_graph_and_never_fetches_model_onnx(
    versions: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = versions
    keys = fetched_keys(monkeypatch)
    fn = handler(store, tmp_path / "cache", precision="int8")
    reply = call(fn, "POST", PREDICT, {"inputs": REVIEWS})
    assert reply.status == 200, reply.body
    body = reply.json()
    manifest = read_published_manifest(LocalStore(store), MODEL, "latest")
    assert (body["version"], body["precision"]) == (manifest.version, "int8")
    fetched = {key.rsplit("/", 1)[1] for key in keys}
    assert INT8_ONNX_FILE in fetched and not fetched & {ONNX_FILE, WEIGHTS_FILE}
    folder = tmp_path / "cache" / MODEL / manifest.version
    assert not (folder / ONNX_FILE).exists()
    # The answer is the int8 graph's.
    assert body["outputs"] == int8_answers(manifest, folder, REVIEWS)
    infer = call(fn, "POST", f"/v2/models/{MODEL}/infer", {
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [REVIEWS[0]]}]
    })  # fmt: skip
    assert infer.status == 200 and infer.json()["parameters"] == {"precision": "int8"}


def test_an_fp32_function_of_the_same_version_never_fetches_the_int8_graph(
    versions: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = versions
    keys = fetched_keys(monkeypatch)
    reply = call(handler(store, tmp_path / "cache"), "POST", PREDICT, {"inputs": REVIEWS})
    assert reply.status == 200 and reply.json()["precision"] == "fp32"
    fetched = {key.rsplit("/", 1)[1] for key in keys}
    assert ONNX_FILE in fetched and not fetched & {INT8_ONNX_FILE, WEIGHTS_FILE}


def test_a_version_without_the_int8_graph_is_a_503_with_the_reason(
    versions: tuple[Path, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, fp32_only = versions
    fn = handler(store, tmp_path / "cache", precision="int8", alias=fp32_only)
    reply = call(fn, "POST", PREDICT, {"inputs": REVIEWS})
    assert reply.status == 503 and int(reply.headers["retry-after"]) >= 1
    assert "has no int8 graph (model.int8.onnx)" in reply.json()["error"]
    # The log tells the operator what to do.
    assert f"modelfn quantize {MODEL}" in caplog.text and fp32_only in caplog.text


def test_a_tampered_int8_graph_is_refused(versions: tuple[Path, str], tmp_path: Path) -> None:
    store, _ = versions
    tampered = LocalStore(tmp_path / "store")
    manifest = read_published_manifest(LocalStore(store), MODEL, "latest")
    for name in [*manifest.files, MANIFEST_FILE]:
        key = file_key(MODEL, manifest.version, name)
        tampered.put_bytes(key, LocalStore(store).get_bytes(key))
    alias = f"{MODEL}/aliases/latest.json"
    tampered.put_bytes(alias, LocalStore(store).get_bytes(alias))
    graph = tampered.root / file_key(MODEL, manifest.version, INT8_ONNX_FILE)
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes
    graph.write_bytes(bytes(data))
    reply = call(
        handler(tampered.root, tmp_path / "cache", precision="int8"),
        "POST",
        PREDICT,
        {"inputs": REVIEWS},
    )
    assert reply.status == 503
    assert "the published artifact failed its integrity check" in reply.json()["error"]
