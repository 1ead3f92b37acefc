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

import errno
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelfn.store.base import Conflict, NotFound, StoreError, Tagged, check_conditions

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
    )


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
    ) -> None:
        """`credentials` (boto3 client keyword arguments, e.g. for a local moto server) default to
        boto3's own chain: environment, profile, instance or Lambda role."""
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url or os.environ.get("MODELFN_S3_ENDPOINT_URL") or None
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._credentials = dict(credentials or {})
        self._client = client

    @property
    def client(self) -> Any:
        # boto3 is imported on first use: a local-folder store never pays for it.
        if self._client is None:
            import boto3

            self._client = boto3.client(
                "s3", endpoint_url=self.endpoint_url, config=client_config(), **self._credentials
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
            if code == "NoSuchBucket":
                return StoreError(f"{action} {where}: bucket {self.bucket!r} does not exist")
            return StoreError(f"{action} {where}: {code} {exc}")
        return StoreError(f"{action} {where}: {exc}")

    def put_file(self, key: str, path: Path, *, if_none_match: bool = False) -> None:
        try:
            if if_none_match:
                # upload_file (s3transfer 0.19) passes no If-None-Match, so a create-only upload is
                # one streamed PutObject: S3 takes up to 5 GiB in a single PUT, far above what a
                # Lambda function can load (250 MB unzipped).
                with path.open("rb") as body:
                    self.client.put_object(
                        Bucket=self.bucket, Key=self._key(key), Body=body, IfNoneMatch="*"
                    )
            else:
                self.client.upload_file(str(path), self.bucket, self._key(key))
        except Exception as exc:
            raise self._write_fail("upload to", key, exc) from exc

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

    def download(self, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        from boto3.s3.transfer import TransferConfig

        # s3transfer re-reads a body that broke off (IncompleteReadError, a read timeout) on its
        # own, on top of botocore's retries of each request: bound those attempts the same way.
        attempts = (self.client.meta.config.retries or {}).get("total_max_attempts", MAX_ATTEMPTS)
        try:
            self.client.download_file(
                self.bucket,
                self._key(key),
                str(path),
                Config=TransferConfig(num_download_attempts=attempts),
            )
        except OSError as exc:
            if exc.errno in _LOCAL_WRITE_ERRNOS:
                raise  # the cache could not be written: not the store's fault, not a NotFound
            raise self._fail("download", key, exc) from exc
        except Exception as exc:
            raise self._fail("download", key, exc) from exc

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
