"""Tests talk to moto only: fake credentials, and nothing that could point boto3 elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from modelfn.store import ArtifactStore, LocalStore, S3Store
from tools.local.s3_server import FAKE_AWS_ENV

# Variables that would send a test's requests somewhere other than moto (a profile's real
# account, another endpoint).
ELSEWHERE = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "MODELFN_S3_ENDPOINT_URL")


def fake_aws_env(
    monkeypatch: pytest.MonkeyPatch, *, unset: tuple[str, ...] = (), **extra: str
) -> None:
    """Set moto's fake credentials and region (plus `extra`), and unset ELSEWHERE and `unset`."""
    for key in ELSEWHERE + unset:
        monkeypatch.delenv(key, raising=False)
    for key, value in {**FAKE_AWS_ENV, **extra}.items():
        monkeypatch.setenv(key, value)


@contextmanager
def local_or_moto_store(
    kind: str, root: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ArtifactStore]:
    """An empty store of `kind`: "local" under `root`, or "s3", a bucket in moto's in-process
    AWS (prefix team/models, so keys are checked to live under a prefix)."""
    if kind == "local":
        yield LocalStore(root)
        return
    fake_aws_env(monkeypatch)
    from moto import mock_aws

    with mock_aws():
        import boto3  # clients are created only after the mock starts

        boto3.client("s3").create_bucket(Bucket="artifacts")
        yield S3Store("artifacts", "team/models")
