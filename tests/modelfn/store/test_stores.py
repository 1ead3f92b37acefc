"""Both store backends behave alike: the local folder and S3 (moto's mock_aws)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelfn.artifact import (
    MANIFEST_FILE,
    ONNX_FILE,
    WEIGHTS_FILE,
    ArtifactError,
    IntegrityError,
    alias_key,
    file_key,
)
from modelfn.store import (
    ArtifactStore,
    LocalStore,
    NotFound,
    S3Store,
    StoreError,
    fetch_artifact,
    list_published,
    open_store,
    publish_artifact,
    read_alias,
    set_alias,
)
from tests.support.aws import fake_aws_env, local_or_moto_store
from tests.support.manifests import write_artifact


class RecordingStore:
    """Wraps a store and records the order of writes."""

    def __init__(self, inner: ArtifactStore) -> None:
        self.inner, self.uri, self.writes = inner, inner.uri, []

    def put_file(self, key: str, path: Path) -> None:
        self.writes.append(key)
        self.inner.put_file(key, path)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.writes.append(key)
        self.inner.put_bytes(key, data)

    def __getattr__(self, name: str):  # get_bytes, download, exists, list_keys
        return getattr(self.inner, name)


@pytest.fixture(params=["local", "s3"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ArtifactStore]:
    with local_or_moto_store(request.param, tmp_path / "store", monkeypatch) as store:
        yield store


def test_publish_writes_files_then_manifest_then_alias(
    store: ArtifactStore, tmp_path: Path
) -> None:
    folder = write_artifact(tmp_path / "build")
    recorder = RecordingStore(store)
    manifest = publish_artifact(recorder, folder)  # type: ignore[arg-type]
    v = manifest.version
    assert recorder.writes[-1] == alias_key("cifar10-cnn", "latest")
    assert recorder.writes[-2] == file_key("cifar10-cnn", v, MANIFEST_FILE)
    assert set(recorder.writes[:-2]) == {
        file_key("cifar10-cnn", v, WEIGHTS_FILE),
        file_key("cifar10-cnn", v, ONNX_FILE),
    }


def test_round_trip_through_the_store(store: ArtifactStore, tmp_path: Path) -> None:
    folder = write_artifact(tmp_path / "build", weights=b"W" * 5000)
    published = publish_artifact(store, folder)
    manifest, fetched = fetch_artifact(store, "cifar10-cnn", "latest", tmp_path / "cache")
    assert manifest == published
    assert (fetched / WEIGHTS_FILE).read_bytes() == b"W" * 5000
    assert fetched == tmp_path / "cache" / "cifar10-cnn" / published.version
    # by version too
    manifest2, _ = fetch_artifact(store, "cifar10-cnn", published.version, tmp_path / "cache2")
    assert manifest2 == published


def test_versions_are_immutable(store: ArtifactStore, tmp_path: Path) -> None:
    folder = write_artifact(tmp_path / "build")
    publish_artifact(store, folder)
    with pytest.raises(StoreError, match="immutable"):
        publish_artifact(store, folder)


def test_tampered_file_in_store_is_refused_and_not_cached(
    store: ArtifactStore, tmp_path: Path
) -> None:
    folder = write_artifact(tmp_path / "build", onnx=b"O" * 64)
    v = publish_artifact(store, folder).version
    store.put_bytes(file_key("cifar10-cnn", v, ONNX_FILE), b"X" * 64)
    with pytest.raises(IntegrityError, match=ONNX_FILE):
        fetch_artifact(store, "cifar10-cnn", "latest", tmp_path / "cache")
    leftovers = list((tmp_path / "cache" / "cifar10-cnn").iterdir())
    assert leftovers == [], f"a refused download must leave nothing in the cache: {leftovers}"


def test_tampered_manifest_in_store_is_refused(store: ArtifactStore, tmp_path: Path) -> None:
    folder = write_artifact(tmp_path / "build")
    v = publish_artifact(store, folder).version
    key = file_key("cifar10-cnn", v, MANIFEST_FILE)
    store.put_bytes(key, store.get_bytes(key).replace(b'"accuracy": 0.5', b'"accuracy": 0.9'))
    with pytest.raises(IntegrityError, match="alias"):
        fetch_artifact(store, "cifar10-cnn", "latest", tmp_path / "cache")


def test_tampered_cache_is_fetched_again(store: ArtifactStore, tmp_path: Path) -> None:
    folder = write_artifact(tmp_path / "build", weights=b"good weights")
    publish_artifact(store, folder)
    _, cached = fetch_artifact(store, "cifar10-cnn", "latest", tmp_path / "cache")
    (cached / WEIGHTS_FILE).write_bytes(b"evil weights")
    _, again = fetch_artifact(store, "cifar10-cnn", "latest", tmp_path / "cache")
    assert (again / WEIGHTS_FILE).read_bytes() == b"good weights"


def test_missing_alias_says_how_to_publish(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="modelfn train cifar10-cnn"):
        fetch_artifact(store, "cifar10-cnn", "latest", tmp_path / "cache")


def test_aliases_and_listing(store: ArtifactStore, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    first = publish_artifact(
        store,
        write_artifact(tmp_path / "a", weights=b"1", created_at=datetime(2026, 1, 1, tzinfo=UTC)),
    )
    second = publish_artifact(store, write_artifact(tmp_path / "b", weights=b"2"))
    assert read_alias(store, "cifar10-cnn", "latest").version == second.version
    set_alias(store, "cifar10-cnn", "prod", first.version)
    [listed] = list_published(store)
    assert listed.versions == sorted([first.version, second.version])
    assert listed.aliases == {"latest": second.version, "prod": first.version}
    with pytest.raises(StoreError, match="not published"):
        set_alias(store, "cifar10-cnn", "prod", "20990101T000000Z-deadbeef")


def test_open_store_picks_the_backend(tmp_path: Path) -> None:
    assert isinstance(open_store(f"file://{tmp_path}"), LocalStore)
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    s3 = open_store("s3://bucket/some/prefix", endpoint_url="http://127.0.0.1:9")
    assert isinstance(s3, S3Store) and (s3.bucket, s3.prefix) == ("bucket", "some/prefix")
    with pytest.raises(StoreError, match="unknown scheme"):
        open_store("gs://bucket")
    with pytest.raises(StoreError, match="no bucket"):
        open_store("s3://")


def test_local_store_refuses_keys_outside_its_root(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="escapes"):
        LocalStore(tmp_path / "s").put_bytes("../outside", b"x")


def test_s3_missing_bucket_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_aws_env(monkeypatch, AWS_DEFAULT_REGION="us-east-1")
    from moto import mock_aws

    with mock_aws(), pytest.raises(StoreError, match="does not exist"):
        S3Store("no-such-bucket").get_bytes("x")


def test_a_manifest_naming_a_path_is_refused_before_anything_is_written(
    store: ArtifactStore, tmp_path: Path
) -> None:
    # Someone who can write to the store could publish a manifest whose "file" is a path; the
    # contract only admits plain names, so the fetch stops at the manifest.
    folder = write_artifact(tmp_path / "build")
    v = publish_artifact(store, folder).version
    key = file_key("cifar10-cnn", v, MANIFEST_FILE)
    evil = store.get_bytes(key).replace(b'"model.onnx"', b'"../../../outside.txt"')
    store.put_bytes(key, evil)
    from modelfn.artifact import sha256_bytes
    from modelfn.store.transfer import _write_alias

    _write_alias(store, "cifar10-cnn", "latest", v, sha256_bytes(evil))
    with pytest.raises(ArtifactError, match="not a valid modelfn manifest"):
        fetch_artifact(store, "cifar10-cnn", "latest", tmp_path / "deep" / "cache")
    assert not (tmp_path / "outside.txt").exists()


@pytest.mark.parametrize(
    ("model", "ref"), [("../etc", "latest"), ("cifar10-cnn", "../../x"), ("Cifar", "latest")]
)
def test_names_that_are_not_plain_are_refused(model: str, ref: str, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError):
        fetch_artifact(LocalStore(tmp_path / "s"), model, ref, tmp_path / "cache")


def test_ensure_bucket_creates_once(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_aws_env(monkeypatch, AWS_DEFAULT_REGION="eu-west-1")
    from moto import mock_aws

    with mock_aws():
        store = S3Store("fresh-bucket")
        store.ensure_bucket()
        store.ensure_bucket()  # already there: no error
        store.put_bytes("k", b"v")
        assert store.get_bytes("k") == b"v"
        location = store.client.get_bucket_location(Bucket="fresh-bucket")["LocationConstraint"]
        assert location == "eu-west-1"


def test_two_fetches_racing_into_one_cache_both_succeed(
    store: ArtifactStore, tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    publish_artifact(store, write_artifact(tmp_path / "build", weights=b"W" * 200_000))
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(
                lambda _: fetch_artifact(store, "cifar10-cnn", "latest", tmp_path / "cache"),
                range(4),
            )
        )
    assert len({folder for _, folder in results}) == 1
    leftovers = [p.name for p in (tmp_path / "cache" / "cifar10-cnn").iterdir()]
    assert leftovers == [results[0][0].version], f"no staging folders may remain: {leftovers}"


def test_conditional_get_transfers_nothing_until_the_object_changes(store: ArtifactStore) -> None:
    store.put_bytes("m/aliases/latest.json", b"one")
    first = store.get_if_changed("m/aliases/latest.json", None)
    assert first is not None and first.data == b"one"
    assert store.get_if_changed("m/aliases/latest.json", first.etag) is None  # HTTP 304
    store.put_bytes("m/aliases/latest.json", b"two")
    second = store.get_if_changed("m/aliases/latest.json", first.etag)
    assert second is not None and second.data == b"two" and second.etag != first.etag
    with pytest.raises(NotFound):
        store.get_if_changed("m/aliases/prod.json", None)
