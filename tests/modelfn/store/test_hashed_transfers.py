"""Downloads hashed as they arrive, parallel parts, and multipart publishing (issue 22, item 2).

Both backends, and S3 both ways a file moves: one GET, or ranged parts on several threads. The
part settings are shrunk so an 11 MiB file moves as 3 parts, three at a time (S3 refuses upload
parts under 5 MiB but the last), and every test runs in moto's in-process S3 in about a second.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import IncompleteReadError

from modelfn.artifact import ONNX_FILE, WEIGHTS_FILE, FileEntry, IntegrityError, file_key
from modelfn.store import (
    ArtifactStore,
    S3Store,
    StoreError,
    fetch_artifact,
    publish_artifact,
)
from modelfn.store.base import Conflict
from modelfn.store.hashing import MiB
from modelfn.store.s3 import MAX_ATTEMPTS
from tests.support.aws import local_or_moto_store
from tests.support.manifests import write_artifact

LARGE = 11 * MiB + 12345  # a last part shorter than the others
# 5 MiB parts from 6 MiB, three at a time: parts at 0, 5 and 10 MiB.
PARTS = {"part_bytes": 5 * MiB, "parallel_min_bytes": 6 * MiB, "part_concurrency": 3}


def entry_of(data: bytes) -> FileEntry:
    return FileEntry(sha256=hashlib.sha256(data).hexdigest(), size=len(data))


@pytest.fixture(scope="module")
def large() -> bytes:
    return os.urandom(LARGE)


@pytest.fixture(params=["local", "s3-one-get", "s3-parts"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ArtifactStore]:
    kind = "local" if request.param == "local" else "s3"
    with local_or_moto_store(kind, tmp_path / "store", monkeypatch) as store:
        if request.param == "s3-parts":
            yield S3Store("artifacts", "team/models", **PARTS)  # type: ignore[arg-type]
        elif request.param == "s3-one-get":
            yield S3Store("artifacts", "team/models", parallel_min_bytes=1 << 40)
        else:
            yield store


def test_the_digest_of_a_download_is_hashlib_over_the_file(
    store: ArtifactStore, large: bytes, tmp_path: Path
) -> None:
    store.put_bytes("m/v/big", large)
    got = store.download("m/v/big", tmp_path / "big", entry_of(large))
    assert got == entry_of((tmp_path / "big").read_bytes()) == entry_of(large)
    assert store.download("m/v/big", tmp_path / "again") == got  # no expectation: just the digest
    store.put_bytes("m/v/empty", b"")
    assert store.download("m/v/empty", tmp_path / "empty", entry_of(b"")) == entry_of(b"")


@pytest.mark.parametrize("damage", ["truncated", "flipped", "longer", "empty"])
def test_wrong_bytes_are_refused_naming_the_file_and_leave_nothing(
    store: ArtifactStore, large: bytes, damage: str, tmp_path: Path
) -> None:
    bad = {
        "truncated": large[:-7],
        "flipped": large[: 5 * MiB] + bytes([large[5 * MiB] ^ 1]) + large[5 * MiB + 1 :],
        "longer": large + b"x",
        "empty": b"",
    }[damage]
    store.put_bytes("m/v/model.onnx.data", bad)
    expected = "does not match manifest" if damage == "flipped" else "manifest says"
    with pytest.raises(
        IntegrityError, match=rf"m/v/model\.onnx\.data -> {tmp_path / 'data'}: .*{expected}"
    ):
        store.download("m/v/model.onnx.data", tmp_path / "data", entry_of(large))
    assert not (tmp_path / "data").exists()


def test_a_large_tampered_file_leaves_no_cache_folder(
    store: ArtifactStore, large: bytes, tmp_path: Path
) -> None:
    version = publish_artifact(store, write_artifact(tmp_path / "build", weights=large)).version
    key = file_key("cifar10-cnn", version, WEIGHTS_FILE)
    store.put_bytes(key, large[: 3 * MiB] + b"\0" + large[3 * MiB + 1 :])
    with pytest.raises(IntegrityError, match=WEIGHTS_FILE):
        fetch_artifact(store, "cifar10-cnn", "latest", tmp_path / "cache")
    assert list((tmp_path / "cache" / "cifar10-cnn").iterdir()) == []


# --- interrupted downloads (S3, parallel parts) -----------------------------------------------


@pytest.fixture
def s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Store]:
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)  # the store's own bound is under test
    with local_or_moto_store("s3", tmp_path / "store", monkeypatch):
        yield S3Store("artifacts", "team/models", **PARTS)  # type: ignore[arg-type]


class _BreaksOff:
    """A body that yields `keep` bytes of the real one, then breaks off as a reset socket does."""

    def __init__(self, body: Any, keep: int) -> None:
        self.body, self.keep = body, keep

    def iter_chunks(self, chunk_size: int) -> Iterator[bytes]:
        yield self.body.read(self.keep)
        raise IncompleteReadError(actual_bytes=self.keep, expected_bytes=MiB)


def break_off(store: S3Store, end: int, times: int) -> list[str]:
    """The next `times` GETs of the part ending at byte `end` (a resumed one included) break off
    half a MiB in; returns every Range sent."""
    real, ranges, left = store.client.get_object, [], [times]

    def get_object(**kwargs: Any) -> Any:
        ranges.append(kwargs.get("Range", ""))
        response = real(**kwargs)
        if kwargs.get("Range", "").endswith(f"-{end}") and left[0] > 0:
            left[0] -= 1
            response["Body"] = _BreaksOff(response["Body"], MiB // 2)
        return response

    store.client.get_object = get_object
    return ranges


def test_a_part_that_breaks_off_is_resumed_where_it_stopped(
    s3: S3Store, large: bytes, tmp_path: Path
) -> None:
    s3.put_bytes("m/v/big", large)
    ranges = break_off(s3, 10 * MiB - 1, times=1)
    assert s3.download("m/v/big", tmp_path / "big", entry_of(large)) == entry_of(large)
    assert f"bytes={5 * MiB + MiB // 2}-{10 * MiB - 1}" in ranges  # only the missing bytes again
    assert len(ranges) == 3 + 1  # 3 parts, one resumed


def test_an_interrupted_download_leaves_nothing_complete_looking_and_a_retry_succeeds(
    s3: S3Store, large: bytes, tmp_path: Path
) -> None:
    version = publish_artifact(s3, write_artifact(tmp_path / "build", weights=large)).version
    break_off(s3, 10 * MiB - 1, times=MAX_ATTEMPTS)  # every attempt the client allows
    with pytest.raises(
        StoreError, match=rf"{WEIGHTS_FILE}: the body broke off {MAX_ATTEMPTS} times"
    ):
        fetch_artifact(s3, "cifar10-cnn", "latest", tmp_path / "cache")
    assert list((tmp_path / "cache" / "cifar10-cnn").iterdir()) == []  # no folder, no staging
    manifest, folder = fetch_artifact(s3, "cifar10-cnn", "latest", tmp_path / "cache")
    assert manifest.version == version
    assert (folder / WEIGHTS_FILE).read_bytes() == large


def test_an_object_replaced_mid_download_is_refused(
    s3: S3Store, large: bytes, tmp_path: Path
) -> None:
    s3.put_bytes("m/v/big", large)
    real = s3.client.get_object

    def get_object(**kwargs: Any) -> Any:
        if kwargs.get("Range", "").startswith(f"bytes={5 * MiB}-"):
            real.__self__.put_object(
                Bucket="artifacts", Key="team/models/m/v/big", Body=large[::-1]
            )
        return real(**kwargs)

    s3.client.get_object = get_object
    with pytest.raises(StoreError, match="changed during the download"):
        s3.download("m/v/big", tmp_path / "big", entry_of(large))
    assert not (tmp_path / "big").exists()


# --- multipart publishing ---------------------------------------------------------------------


def assert_multipart_round_trip(store: S3Store, large: bytes, tmp_path: Path) -> None:
    published = publish_artifact(store, write_artifact(tmp_path / "build", weights=large))

    def head(name: str) -> Any:
        key = f"team/models/{file_key('cifar10-cnn', published.version, name)}"
        return store.client.head_object(Bucket="artifacts", Key=key, ChecksumMode="ENABLED")

    # The weights went up in 3 parts, each with its SHA256 (the object's is S3's checksum of the
    # parts' checksums); the small graph in one PUT, whose SHA256 is the file's own.
    assert head(WEIGHTS_FILE)["ETag"].endswith('-3"') and head(WEIGHTS_FILE)["ChecksumSHA256"]
    graph = published.files[ONNX_FILE].sha256
    assert head(ONNX_FILE)["ChecksumSHA256"] == base64.b64encode(bytes.fromhex(graph)).decode()
    assert store.client.list_multipart_uploads(Bucket="artifacts").get("Uploads", []) == []
    _, folder = fetch_artifact(store, "cifar10-cnn", "latest", tmp_path / "cache")
    assert (folder / WEIGHTS_FILE).read_bytes() == large


def test_a_large_file_is_published_in_parts_with_checksums(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, large: bytes
) -> None:
    with local_or_moto_store("s3", tmp_path / "store", monkeypatch):
        assert_multipart_round_trip(S3Store("artifacts", "team/models", **PARTS), large, tmp_path)  # type: ignore[arg-type]


def test_multipart_publish_against_the_moto_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, large: bytes
) -> None:
    from tests.support.aws import fake_aws_env
    from tools.local.s3_server import FAKE_CREDENTIALS, moto_s3_server

    fake_aws_env(monkeypatch)
    with moto_s3_server() as endpoint:
        store = S3Store(
            "artifacts", "team/models", endpoint_url=endpoint, credentials=FAKE_CREDENTIALS, **PARTS
        )  # type: ignore[arg-type]
        store.ensure_bucket()
        assert_multipart_round_trip(store, large, tmp_path)


def test_a_multipart_upload_is_create_only_and_aborted_when_it_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, large: bytes
) -> None:
    with local_or_moto_store("s3", tmp_path / "store", monkeypatch):
        store = S3Store("artifacts", "team/models", **PARTS)  # type: ignore[arg-type]
        (tmp_path / "big").write_bytes(large)
        store.put_file("m/v/big", tmp_path / "big", if_none_match=True)
        with pytest.raises(Conflict):
            store.put_file("m/v/big", tmp_path / "big", if_none_match=True)

        real = store.client.upload_part

        def upload_part(**kwargs: Any) -> Any:
            if kwargs["PartNumber"] == 2:
                raise ConnectionResetError("injected")
            return real(**kwargs)

        store.client.upload_part = upload_part
        with pytest.raises(StoreError, match="injected"):
            store.put_file("m/v/other", tmp_path / "big", if_none_match=True)
        assert not store.exists("m/v/other")
        assert store.client.list_multipart_uploads(Bucket="artifacts").get("Uploads", []) == []


# --- one GET per file, for servers that read the whole object per range (moto) -------------------


def test_with_ranged_gets_off_a_large_file_comes_in_one_get_and_resumes_where_it_broke(
    s3: S3Store, large: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELFN_S3_RANGED_GETS", "0")
    one_get = S3Store("artifacts", "team/models", **PARTS)  # type: ignore[arg-type]
    one_get.put_bytes("m/v/big", large)
    real, ranges = one_get.client.get_object, []

    def get_object(**kwargs: Any) -> Any:
        ranges.append(kwargs.get("Range", ""))
        response = real(**kwargs)
        if len(ranges) == 1:  # the first answer breaks off half a MiB in
            response["Body"] = _BreaksOff(response["Body"], MiB // 2)
        return response

    one_get.client.get_object = get_object
    assert one_get.download("m/v/big", tmp_path / "big", entry_of(large)) == entry_of(large)
    assert ranges == ["", f"bytes={MiB // 2}-"]  # the whole object, then only what was missing
    assert (tmp_path / "big").read_bytes() == large
    # The argument wins over the setting; uploads keep their parts either way.
    assert S3Store("artifacts", ranged_gets=True).ranged_gets
    assert one_get.parallel_min_bytes == PARTS["parallel_min_bytes"]


@pytest.mark.parametrize("value", ["no", "2", "off"])
def test_a_ranged_gets_setting_that_is_not_0_or_1_is_refused_by_name(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELFN_S3_RANGED_GETS", value)
    with pytest.raises(StoreError, match=rf"MODELFN_S3_RANGED_GETS='{value}': expected 1 .* or 0"):
        S3Store("artifacts")


def test_a_write_that_fails_midway_is_raised_and_nothing_after_it_is_written(
    tmp_path: Path,
) -> None:
    """The one-GET writer hashes on a second thread: its error reaches the reader's thread."""
    import errno

    from modelfn.store.hashing import HashingWriter

    class FullAfterTwo:
        def __init__(self) -> None:
            self.writes = 0

        def write(self, data: bytes) -> int:
            self.writes += 1
            if self.writes > 2:
                raise OSError(errno.ENOSPC, "No space left on device")
            return len(data)

    file = FullAfterTwo()
    writer = HashingWriter(file)  # type: ignore[arg-type]
    with pytest.raises(OSError, match="No space left"):
        writer.write_all(iter([b"a" * MiB] * 50))
    assert writer.size == 2 * MiB and file.writes == 3  # the third failed; none after it
    with (tmp_path / "f").open("wb") as target:
        done = HashingWriter(target)
        done.write_all(iter([b"x", b"yz"]))
    assert done.entry() == entry_of(b"xyz") and (tmp_path / "f").read_bytes() == b"xyz"
