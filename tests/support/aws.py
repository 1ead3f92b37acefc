"""Tests talk to moto only: fake credentials, and nothing that could point boto3 elsewhere."""

from __future__ import annotations

import pytest

from modelfn.local.s3_server import FAKE_AWS_ENV

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
