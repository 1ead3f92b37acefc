"""The S3 backend: the same code talks to AWS, a moto server, MinIO or LocalStack.

The endpoint is resolved as: explicit argument, then $MODELFN_S3_ENDPOINT_URL, then boto3's own
lookup (which honours $AWS_ENDPOINT_URL_S3 and $AWS_ENDPOINT_URL, then the AWS default).

Every client retries transient faults (SlowDown and other throttling, 5xx, connection and read
timeouts) a bounded number of times with jittered exponential backoff (botocore's "standard"
mode: a random delay in [0, 2**attempt) s, capped at 20 s), and never retries a permanent one
(AccessDenied, NoSuchKey). What is still failing after that reaches the caller as a StoreError;
a function answers 503 and its ModelSlot tries the load again later. The mode and the attempts
are resolved as $AWS_RETRY_MODE / $AWS_MAX_ATTEMPTS (botocore's own names), then the defaults
below.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import os
import socket
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from modelfn.artifact import ArtifactError, FileEntry, check_bytes
from modelfn.store.base import Conflict, NotFound, StoreError, Tagged, check_conditions
from modelfn.store.hashing import CHUNK_BYTES, HashingWriter, MiB, byte_ranges, fetch_parts

# Attempts per request, the first included: 3 attempts sleep at most 1 + 2 s between them, so a
# throttled or flaky read gives up within a few seconds of the 10 s Lambda init instead of
# outliving it (botocore's legacy default was 5).
MAX_ATTEMPTS = 3
RETRY_MODE = "standard"
# Seconds. S3 answers a connection in milliseconds; 2 s is far above that and short enough to retry
# inside the init. The read timeout is per socket read (bytes still flowing never trip it), so
# 5 s only catches a stalled transfer, not a large one.
CONNECT_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 5.0
# Large objects move as byte ranges on several connections at once, both ways. AWS's guidance for
# S3 throughput is ranged GETs of 8 or 16 MB in parallel: one connection tops out near 90 MB/s,
# and a Lambda function's link carries several. 8 MiB parts on 8 connections keep 80 MiB in
# flight (the memory a download holds: fetch_parts' window, 10 parts) and give a 1 GiB file 128
# parts, far under multipart's limit of 10,000.
PART_BYTES = 8 * MiB
PART_CONCURRENCY = 8
# Below two parts, one GET (or one PUT): splitting a small file buys less than the extra request's
# first byte costs, so today's 2 to 6 MB artifacts move exactly as before.
PARALLEL_MIN_BYTES = 2 * PART_BYTES
# Downloads in ranged parts, as a function setting: "0" fetches every file with one GET, whatever
# its size (uploads keep their parts). For endpoints that serve a range by reading the whole
# object: moto does (its `_handle_range_header` slices the full value for every ranged GET), so
# the 128 parts of a 1 GiB file read 128 GiB there, and a 256 MiB file came down 12x slower in
# parts than in one GET (bench/fetch.py). The local deployment sets it to "0"
# (tools/local/s3_server.MOTO_STORE_ENV). On AWS S3 a ranged GET reads only its range.
RANGED_GETS_ENV = "MODELFN_S3_RANGED_GETS"
# Connections the client keeps: the parts of one file and the files fetch_artifact fetches beside
# it (botocore's default, 10, would make the parts queue for a connection and reconnect).
MAX_POOL_CONNECTIONS = 2 * PART_CONCURRENCY
# A body that broke off (a connection reset, a read timeout, fewer bytes than Content-Length)
# is not retried by botocore, which retries requests, not the bodies it already answered; the
# download asks again for the bytes still missing, as s3transfer does for its own downloads.
_BROKEN_OFF_NAMES = ("IncompleteReadError", "ReadTimeoutError", "ResponseStreamingError")
# Errno values that mean the local file could not be written (the /tmp cache is full, or
# read-only): the store answered, so these are not store errors and are raised as they are.
_LOCAL_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def client_config(environ: Mapping[str, str] | None = None) -> Any:
    """The botocore Config of every S3Store client: bounded, jittered retries and timeouts."""
    from botocore.config import Config

    env = os.environ if environ is None else environ
    mode = env.get("AWS_RETRY_MODE") or RETRY_MODE
    try:
        attempts = int(env.get("AWS_MAX_ATTEMPTS") or MAX_ATTEMPTS)
    except ValueError:
        raise StoreError(
            f"AWS_MAX_ATTEMPTS={env['AWS_MAX_ATTEMPTS']!r} is not a whole number; set it to the "
            f"attempts per S3 request, e.g. {MAX_ATTEMPTS}, or unset it"
        ) from None
    return Config(
        retries={"mode": mode, "total_max_attempts": max(attempts, 1)},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        max_pool_connections=MAX_POOL_CONNECTIONS,
    )


def ranged_gets_setting(environ: Mapping[str, str] | None = None) -> bool:
    """$MODELFN_S3_RANGED_GETS: "1" (the default, unset or empty) or "0"."""
    env = os.environ if environ is None else environ
    text = env.get(RANGED_GETS_ENV, "").strip()
    if text not in {"", "0", "1"}:
        raise StoreError(
            f"{RANGED_GETS_ENV}={text!r}: expected 1 (large files in parallel ranged GETs, for "
            "S3) or 0 (one GET per file, for a server that reads the whole object per range, "
            "such as moto); unset it for 1"
        )
    return text != "0"


def _broken_off() -> tuple[type[BaseException], ...]:
    import botocore.exceptions

    named = tuple(getattr(botocore.exceptions, name) for name in _BROKEN_OFF_NAMES)
    return (*named, socket.timeout, ConnectionError)


class S3Store:
    # PutObject's If-None-Match and If-Match (S3 since 2024; moto 5 honours both).
    conditional_writes = True

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        credentials: Mapping[str, str] | None = None,
        client: Any | None = None,
        part_bytes: int = PART_BYTES,
        part_concurrency: int = PART_CONCURRENCY,
        parallel_min_bytes: int = PARALLEL_MIN_BYTES,
        ranged_gets: bool | None = None,
    ) -> None:
        """`credentials` (boto3 client keyword arguments, e.g. for a local moto server) default to
        boto3's own chain: environment, profile, instance or Lambda role. `ranged_gets` is the
        argument, then $MODELFN_S3_RANGED_GETS, then on. The part settings are for benchmarks
        and tests (S3 refuses parts under 5 MiB but the last); the defaults above say why they
        are what they are."""
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url or os.environ.get("MODELFN_S3_ENDPOINT_URL") or None
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._credentials = dict(credentials or {})
        self._client = client
        self._client_lock = threading.Lock()  # fetch_artifact downloads files on several threads
        self.part_bytes, self.part_concurrency = part_bytes, part_concurrency
        self.parallel_min_bytes = max(parallel_min_bytes, part_bytes + 1)
        self.ranged_gets = ranged_gets_setting() if ranged_gets is None else ranged_gets

    @property
    def client(self) -> Any:
        # boto3 is imported on first use: a local-folder store never pays for it.
        with self._client_lock:
            if self._client is None:
                import boto3

                self._client = boto3.client(
                    "s3",
                    endpoint_url=self.endpoint_url,
                    config=client_config(),
                    **self._credentials,
                )
            return self._client

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (local servers: moto, MinIO, LocalStack)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except Exception as exc:
            error = self._fail("check bucket", "", exc)
            if not isinstance(error, NotFound):
                raise error from exc
        region = self.client.meta.region_name
        # us-east-1 is the one region that refuses an explicit LocationConstraint.
        config = (
            {}
            if region in (None, "us-east-1")
            else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        )
        try:
            self.client.create_bucket(Bucket=self.bucket, **config)
        except Exception as exc:
            raise self._fail("create bucket", "", exc) from exc

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _fail(self, action: str, key: str, exc: Exception) -> StoreError:
        from botocore.exceptions import ClientError

        where = f"s3://{self.bucket}/{self._key(key)}"
        if self.endpoint_url:
            where += f" (endpoint {self.endpoint_url})"
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            if code in {"404", "NoSuchKey", "NotFound"}:
                return NotFound(f"{where} not found")
            if code in {"PreconditionFailed", "412"}:
                return StoreError(
                    f"{action} {where}: the object changed during the download (If-Match "
                    "failed); fetch again"
                )
            if code == "NoSuchBucket":
                return StoreError(f"{action} {where}: bucket {self.bucket!r} does not exist")
            return StoreError(f"{action} {where}: {code} {exc}")
        return StoreError(f"{action} {where}: {exc}")

    def put_file(self, key: str, path: Path, *, if_none_match: bool = False) -> None:
        """One PutObject below `parallel_min_bytes`, else a multipart upload; either way S3 checks
        each request's bytes against the sha256 sent with it (ChecksumSHA256), and a create-only
        write puts If-None-Match on the PUT or on CompleteMultipartUpload (s3transfer's
        upload_file passes neither, so neither goes through it)."""
        conditions = {"IfNoneMatch": "*"} if if_none_match else {}
        try:
            if path.stat().st_size < self.parallel_min_bytes:
                with path.open("rb") as body:
                    self.client.put_object(
                        Bucket=self.bucket,
                        Key=self._key(key),
                        Body=body,
                        ChecksumAlgorithm="SHA256",
                        **conditions,
                    )
            else:
                self._upload_parts(key, path, conditions)
        except Exception as exc:
            raise self._write_fail("upload to", key, exc) from exc

    def _upload_parts(self, key: str, path: Path, conditions: dict[str, str]) -> None:
        where = {"Bucket": self.bucket, "Key": self._key(key)}
        upload = self.client.create_multipart_upload(**where, ChecksumAlgorithm="SHA256")
        upload_id = upload["UploadId"]
        try:
            with path.open("rb") as file:
                fd = file.fileno()

                def send(number: int, start: int, end: int) -> dict[str, Any]:
                    data = os.pread(fd, end - start + 1, start)
                    checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
                    sent = self.client.upload_part(
                        **where,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=data,
                        ChecksumSHA256=checksum,
                    )
                    return {"PartNumber": number, "ETag": sent["ETag"], "ChecksumSHA256": checksum}

                parts = byte_ranges(0, os.fstat(fd).st_size, self.part_bytes)
                with ThreadPoolExecutor(self.part_concurrency) as pool:
                    # Each part is read when its thread starts it: memory is threads x part size.
                    sent = list(pool.map(send, range(1, len(parts) + 1), *zip(*parts, strict=True)))
            self.client.complete_multipart_upload(
                **where, UploadId=upload_id, MultipartUpload={"Parts": sent}, **conditions
            )
        except BaseException:
            from botocore.exceptions import BotoCoreError, ClientError

            # Parts of an upload never completed are stored (and billed) until aborted; a failed
            # abort is not reported over the error that got here.
            with contextlib.suppress(BotoCoreError, ClientError):
                self.client.abort_multipart_upload(**where, UploadId=upload_id)
            raise

    def put_bytes(
        self, key: str, data: bytes, *, if_none_match: bool = False, if_match: str | None = None
    ) -> None:
        check_conditions(if_none_match, if_match)
        conditions = (
            {"IfNoneMatch": "*"} if if_none_match else {"IfMatch": if_match} if if_match else {}
        )
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **conditions)
        except Exception as exc:
            raise self._write_fail("write", key, exc) from exc

    def _write_fail(self, action: str, key: str, exc: Exception) -> StoreError:
        from botocore.exceptions import ClientError

        code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
        where = f"s3://{self.bucket}/{self._key(key)}"
        # 412: the condition was false. 409: another conditional write to the key was in flight.
        # 404 on If-Match: the object was deleted since it was read.
        if code in {
            "PreconditionFailed",
            "412",
            "ConditionalRequestConflict",
            "409",
            "NoSuchKey",
            "404",
        }:
            return Conflict(
                f"{action} {where}: {code}: the object exists or changed since it was read; not written"
            )
        if code in {"NotImplemented", "501"}:
            return StoreError(
                f"{action} {where}: the endpoint does not implement conditional writes "
                "(If-None-Match / If-Match on PutObject); use AWS S3 or a server that does, e.g. a "
                "current MinIO or moto >= 5"
            )
        return self._fail(action, key, exc)

    def get_bytes(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            return response["Body"].read()  # type: ignore[no-any-return]
        except Exception as exc:
            raise self._fail("read", key, exc) from exc

    def get_if_changed(self, key: str, etag: str | None) -> Tagged | None:
        from botocore.exceptions import ClientError

        extra = {"IfNoneMatch": etag} if etag else {}
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key), **extra)
            return Tagged(response["Body"].read(), response["ETag"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"304", "NotModified"}:
                return None
            raise self._fail("read", key, exc) from exc
        except Exception as exc:
            raise self._fail("read", key, exc) from exc

    def download(self, key: str, path: Path, expected: FileEntry | None = None) -> FileEntry:
        """One GET below `parallel_min_bytes` (or without `expected`, whose size decides, or with
        ranged GETs off), else parallel ranged GETs (`fetch_parts`); hashed as the bytes arrive,
        either way."""
        path.parent.mkdir(parents=True, exist_ok=True)
        # The object and the file: the bytes that failed came from one into the other.
        where = f"s3://{self.bucket}/{self._key(key)} -> {path}"
        try:
            with path.open("wb") as file:
                large = expected is not None and expected.size >= self.parallel_min_bytes
                if self.ranged_gets and expected is not None and large:
                    got = self._download_parts(key, file, expected, where)
                else:
                    got = self._download_whole(key, file)
            if expected is not None:
                check_bytes(where, got.size, got.sha256, expected)
            return got
        except BaseException as exc:
            path.unlink(missing_ok=True)
            if isinstance(exc, OSError) and exc.errno in _LOCAL_WRITE_ERRNOS:
                raise  # the cache could not be written: not the store's fault, not a NotFound
            if isinstance(exc, (StoreError, ArtifactError)) or not isinstance(exc, Exception):
                raise
            raise self._fail("download", key, exc) from exc

    def _get(
        self, key: str, start: int = 0, end: int | None = None, etag: str | None = None
    ) -> Any:
        """GetObject of bytes [start, end] (end None: to the last); with `etag`, only while the
        object is still that one (If-Match), so a download never mixes two objects' bytes."""
        extra = {"IfMatch": etag} if etag else {}
        if start or end is not None:
            extra["Range"] = f"bytes={start}-{'' if end is None else end}"
        return self.client.get_object(Bucket=self.bucket, Key=self._key(key), **extra)

    def _attempts(self) -> int:
        retries = self.client.meta.config.retries or {}
        return int(retries.get("total_max_attempts", MAX_ATTEMPTS))

    def _download_whole(self, key: str, file: BinaryIO) -> FileEntry:
        # A body that breaks off is resumed from the bytes already written and hashed.
        writer, etag, broken_off = HashingWriter(file), None, _broken_off()
        error: BaseException | None = None
        for _ in range(self._attempts()):
            response = self._get(key, writer.size, None, etag)
            etag = etag or response.get("ETag")
            answered = response.get("ContentRange")
            if writer.size and answered is None:  # the whole object again: start over
                file.seek(0)
                file.truncate()
                writer = HashingWriter(file)
            elif writer.size and not answered.startswith(f"bytes {writer.size}-"):
                raise StoreError(
                    f"download s3://{self.bucket}/{self._key(key)}: asked to resume at byte "
                    f"{writer.size}, the endpoint answered {answered!r}; fetch again"
                )
            try:
                writer.write_all(response["Body"].iter_chunks(CHUNK_BYTES))
                return writer.entry()
            except broken_off as exc:
                error = exc
        raise self._broken_off_fail(key, writer.size, error)

    def _download_parts(
        self, key: str, file: BinaryIO, expected: FileEntry, where: str
    ) -> FileEntry:
        from botocore.exceptions import ClientError

        # The first part's answer says how large the object is (Content-Range) and which one it
        # is (ETag): an object of the wrong size is refused before the rest is fetched.
        try:
            response = self._get(key, 0, self.part_bytes - 1)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "InvalidRange":
                raise
            check_bytes(where, 0, None, expected)  # an empty object has no byte 0
            raise
        size = int(response["ContentRange"].rpartition("/")[2])
        check_bytes(where, size, None, expected)
        etag = response["ETag"]
        first = self._read_body(key, response, 0, min(self.part_bytes, size) - 1, etag)

        def read_part(start: int, end: int) -> bytes | bytearray:
            return self._read_body(key, None, start, end, etag)

        return fetch_parts(
            read_part,
            file.fileno(),
            first,
            size,
            part_bytes=self.part_bytes,
            concurrency=self.part_concurrency,
        )

    def _read_body(
        self, key: str, response: Any, start: int, end: int, etag: str
    ) -> bytes | bytearray:
        """Bytes [start, end] of the object, from `response` if given; a body that breaks off
        is asked for again from where it stopped."""
        data, broken_off = bytearray(), _broken_off()
        error: BaseException | None = None
        for _ in range(self._attempts()):
            if response is None:
                response = self._get(key, start + len(data), end, etag)
            try:
                for chunk in response["Body"].iter_chunks(CHUNK_BYTES):
                    data += chunk
            except broken_off as exc:
                error, response = exc, None
                continue
            if len(data) != end - start + 1:
                raise StoreError(
                    f"download s3://{self.bucket}/{self._key(key)}: bytes {start}-{end} answered "
                    f"{len(data)} bytes; the object changed during the download, fetch again"
                )
            return data
        raise self._broken_off_fail(key, start + len(data), error)

    def _broken_off_fail(self, key: str, at: int, error: BaseException | None) -> StoreError:
        return StoreError(
            f"download s3://{self.bucket}/{self._key(key)}: the body broke off "
            f"{self._attempts()} times, the last at byte {at}: {error}; nothing was kept"
        )

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except Exception as exc:
            error = self._fail("check", key, exc)
            if isinstance(error, NotFound):
                return False
            raise error from exc

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        full = self._key(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                keys.extend(obj["Key"][strip:] for obj in page.get("Contents", []))
        except Exception as exc:
            raise self._fail("list", prefix, exc) from exc
        return sorted(keys)
