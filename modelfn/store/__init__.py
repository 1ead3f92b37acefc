"""Artifact stores: one interface (`ArtifactStore`), two backends (local folder, S3).

`open_store(uri)` picks the backend from the URI: `s3://bucket/prefix` or a folder path
(`file:///abs/path`, `file://relative/path` or a plain path).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from modelfn.store.base import ArtifactStore, NotFound, StoreError
from modelfn.store.local import LocalStore
from modelfn.store.s3 import S3Store
from modelfn.store.transfer import (
    PublishedModel,
    fetch_artifact,
    list_published,
    publish_artifact,
    read_alias,
    read_published_manifest,
    set_alias,
)

DEFAULT_LOCAL_STORE = Path(__file__).resolve().parents[2] / "model_artifacts"

__all__ = [
    "DEFAULT_LOCAL_STORE",
    "ArtifactStore",
    "LocalStore",
    "NotFound",
    "PublishedModel",
    "S3Store",
    "StoreError",
    "fetch_artifact",
    "list_published",
    "open_store",
    "publish_artifact",
    "read_alias",
    "read_published_manifest",
    "set_alias",
]


def open_store(uri: str | Path | None = None, *, endpoint_url: str | None = None) -> ArtifactStore:
    """Open the store at `uri` (default: the repo's model_artifacts/ folder)."""
    if uri is None or str(uri) == "":
        return LocalStore(DEFAULT_LOCAL_STORE)
    text = str(uri)
    if text.startswith("s3://"):
        parsed = urlparse(text)
        if not parsed.netloc:
            raise StoreError(f"store URI {text!r} has no bucket; expected s3://BUCKET[/PREFIX]")
        return S3Store(parsed.netloc, parsed.path.lstrip("/"), endpoint_url=endpoint_url)
    if text.startswith("file://"):
        return LocalStore(text[len("file://") :])
    if "://" in text:
        raise StoreError(
            f"store URI {text!r}: unknown scheme; use s3://BUCKET[/PREFIX] or a folder path"
        )
    return LocalStore(text)
