"""The S3 backend: the same code talks to AWS, a moto server, MinIO or LocalStack.

The endpoint is resolved as: explicit argument, then $MODELFN_S3_ENDPOINT_URL, then boto3's own
lookup (which honours $AWS_ENDPOINT_URL_S3 and $AWS_ENDPOINT_URL, then the AWS default).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelfn.store.base import NotFound, StoreError, Tagged


class S3Store:
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

            self._client = boto3.client("s3", endpoint_url=self.endpoint_url, **self._credentials)
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
        config = {} if region in (None, "us-east-1") else {"CreateBucketConfiguration": {"LocationConstraint": region}}
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

    def put_file(self, key: str, path: Path) -> None:
        try:
            self.client.upload_file(str(path), self.bucket, self._key(key))
        except Exception as exc:
            raise self._fail("upload to", key, exc) from exc

    def put_bytes(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        except Exception as exc:
            raise self._fail("write", key, exc) from exc

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
        try:
            self.client.download_file(self.bucket, self._key(key), str(path))
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
