"""Bundles through the store interface: S3 under moto's mock_aws, and the local folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.export import ExportResult
from edge.publish import RECORD_FILE, edge_prefix, fetch_bundle, publish_bundle
from modelfn.artifact import IntegrityError
from modelfn.store import ArtifactStore, NotFound, StoreError, list_published
from tests.support.aws import local_or_moto_store


@pytest.fixture(params=["s3", "local"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ArtifactStore]:
    with local_or_moto_store(request.param, tmp_path / "store", monkeypatch) as store:
        yield store


def test_publish_then_fetch_gives_the_same_bytes(
    store: ArtifactStore, cifar_bundle: ExportResult, tmp_path: Path
) -> None:
    m = cifar_bundle.manifest
    record = publish_bundle(store, cifar_bundle.path)
    prefix = edge_prefix(m.model, m.version)
    assert store.list_keys("edge/") == sorted(
        [f"{prefix}/{record.file}", f"{prefix}/{RECORD_FILE}"]
    )
    manifest, path = fetch_bundle(store, m.model, m.version, tmp_path / "device")
    assert manifest == m and path.read_bytes() == cifar_bundle.path.read_bytes()
    assert list_published(store) == []  # edge/ keys are not model versions
    with pytest.raises(StoreError, match="already published"):
        publish_bundle(store, cifar_bundle.path)


def test_a_changed_bundle_in_the_store_is_refused(
    store: ArtifactStore, cifar_bundle: ExportResult, tmp_path: Path
) -> None:
    m = cifar_bundle.manifest
    record = publish_bundle(store, cifar_bundle.path)
    data = bytearray(cifar_bundle.path.read_bytes())
    data[100] ^= 1  # one flipped bit, as a bad disk or a meddling hand would leave it
    store.put_bytes(f"{edge_prefix(m.model, m.version)}/{record.file}", bytes(data))
    with pytest.raises(IntegrityError, match="do not match bundle.json"):
        fetch_bundle(store, m.model, m.version, tmp_path / "device")
    assert not list((tmp_path / "device").iterdir())  # nothing half-verified is left behind


def test_fetching_an_unpublished_bundle_says_how_to_export(
    store: ArtifactStore, tmp_path: Path
) -> None:
    with pytest.raises(NotFound, match="modelfn export-edge cifar10-cnn --version"):
        fetch_bundle(store, "cifar10-cnn", "20260101T000000Z-00000000", tmp_path)


def test_publish_verifies_the_bundle_first(store: ArtifactStore, tmp_path: Path) -> None:
    bad = tmp_path / "x.edge.tar.gz"
    bad.write_bytes(b"nope")
    with pytest.raises(Exception, match="not a readable"):
        publish_bundle(store, bad)
    assert store.list_keys("edge/") == []
