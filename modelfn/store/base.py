"""The store interface: a flat key -> bytes space that artifacts are published into."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Protocol


class StoreError(Exception):
    """The store could not be reached or refused an operation; the message says which and where."""


class NotFound(StoreError):
    """The key does not exist in the store."""


class Tagged(NamedTuple):
    """An object's bytes and its entity tag, which changes whenever the object does."""

    data: bytes
    etag: str


class ArtifactStore(Protocol):
    """A backend holds objects under '/'-separated keys such as `cifar10-cnn/<version>/model.onnx`."""

    uri: str

    def put_file(self, key: str, path: Path) -> None: ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def get_if_changed(self, key: str, etag: str | None) -> Tagged | None:
        """A conditional GET: None if the object's tag is still `etag` (nothing is transferred),
        else its bytes and new tag. A warm function re-reads its alias this way (HTTP 304)."""
        ...

    def download(self, key: str, path: Path) -> None: ...

    def exists(self, key: str) -> bool: ...

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under `prefix`, sorted."""
        ...
