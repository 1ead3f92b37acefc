"""A graph whose weights are external data (`model.onnx.data`, as export writes a graph over the
contract's threshold): published to both stores, fetched and verified, loaded from the cache
folder and served through the Lambda handler; a damaged data file is refused on fetch."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from mangum import Mangum

from functions.app import create_app
from functions.onnx_session import GRAPH_CACHE
from functions.settings import FunctionSettings
from modelfn.artifact import ONNX_DATA_FILE, ONNX_FILE, IntegrityError, file_key, sha256_file
from modelfn.store import ArtifactStore, fetch_artifact, publish_artifact
from tests.functions.conftest import MODEL, TinyModel, build_tiny_model, call, random_pixels
from tests.functions.routes.test_predict import PREDICT, assert_matches, expected
from tests.support.aws import local_or_moto_store


@pytest.fixture(params=["local", "s3"])
def any_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ArtifactStore]:
    with local_or_moto_store(request.param, tmp_path / "store", monkeypatch) as store:
        yield store


@pytest.fixture
def external(tmp_path: Path) -> TinyModel:
    return build_tiny_model(tmp_path / "build", external_data=True)


def settings_for(store: ArtifactStore, tmp_path: Path) -> FunctionSettings:
    return FunctionSettings(
        model=MODEL, store_uri=store.uri, cache_dir=tmp_path / "cache", load_retry_s=60
    )


def test_external_data_is_published_fetched_loaded_and_served(
    any_store: ArtifactStore,
    external: TinyModel,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    version = external.manifest.version
    assert list(external.manifest.files)[-2:] == [ONNX_FILE, ONNX_DATA_FILE]
    publish_artifact(any_store, external.folder)
    assert any_store.exists(file_key(MODEL, version, ONNX_DATA_FILE))
    settings = settings_for(any_store, tmp_path)
    with caplog.at_level(logging.INFO):
        handler = Mangum(create_app(settings), lifespan="off")
        pixels = random_pixels(2)
        reply = call(handler, "POST", PREDICT, {"inputs": [p.tolist() for p in pixels]})
    assert reply.status == 200, reply.body
    assert reply.json()["version"] == version
    assert_matches(reply.json()["outputs"], expected(external, pixels, top_k=3))
    cached = settings.cache_dir / MODEL / version
    assert sha256_file(cached / ONNX_DATA_FILE) == external.manifest.files[ONNX_DATA_FILE].sha256
    # The optimised-graph cache would copy the weights into /tmp again: skipped, and said.
    assert not (settings.cache_dir / GRAPH_CACHE).exists()
    assert "optimised graph not cached: the graph's weights are external data" in caplog.text


@pytest.mark.parametrize("damage", ["flip a byte", "truncate"])
def test_a_damaged_data_file_in_the_store_is_refused_on_fetch_naming_it(
    any_store: ArtifactStore, external: TinyModel, tmp_path: Path, damage: str
) -> None:
    publish_artifact(any_store, external.folder)
    version = external.manifest.version
    data = bytearray((external.folder / ONNX_DATA_FILE).read_bytes())
    if damage == "flip a byte":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[len(data) // 2 :]
    tampered = tmp_path / "tampered"
    tampered.write_bytes(bytes(data))
    any_store.put_file(file_key(MODEL, version, ONNX_DATA_FILE), tampered)
    cache = tmp_path / "cache"
    with pytest.raises(IntegrityError, match=ONNX_DATA_FILE.replace(".", r"\.")):
        fetch_artifact(any_store, MODEL, "latest", cache)
    assert not (cache / MODEL / version).exists()  # nothing that looks complete is left


def test_a_damaged_data_file_in_the_cache_is_fetched_again(
    any_store: ArtifactStore, external: TinyModel, tmp_path: Path
) -> None:
    publish_artifact(any_store, external.folder)
    cache = tmp_path / "cache"
    _, folder = fetch_artifact(any_store, MODEL, "latest", cache)
    with (folder / ONNX_DATA_FILE).open("r+b") as fh:
        fh.truncate(100)
    _, again = fetch_artifact(any_store, MODEL, "latest", cache)
    assert sha256_file(again / ONNX_DATA_FILE) == external.manifest.files[ONNX_DATA_FILE].sha256
