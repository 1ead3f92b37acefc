"""The store interface: a flat key -> bytes space that artifacts are published into."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Protocol

from modelfn.artifact import FileEntry


class StoreError(Exception):
    """The store could not be reached or refused an operation; the message says which and where."""


class NotFound(StoreError):
    """The key does not exist in the store."""


class Conflict(StoreError):
    """A conditional write was refused: the key already existed (`if_none_match`) or was changed
    since it was read (`if_match`). Nothing was written."""


class Tagged(NamedTuple):
    """An object's bytes and its entity tag, which changes whenever the object does."""

    data: bytes
    etag: str


class ArtifactStore(Protocol):
    """A backend holds objects under '/'-separated keys such as `cifar10-cnn/<version>/model.onnx`."""

    uri: str
    # Whether put_file/put_bytes honour the conditions below (S3's If-None-Match / If-Match). Read
    # from the class, not the instance (`supports_conditional_writes`), so a wrapper that forwards
    # attributes to another store does not claim conditions its own put methods would drop.
    conditional_writes: bool

    def put_file(self, key: str, path: Path, *, if_none_match: bool = False) -> None:
        """Write `key` from a file. `if_none_match`: create only; Conflict if the key exists."""
        ...

    def put_bytes(
        self, key: str, data: bytes, *, if_none_match: bool = False, if_match: str | None = None
    ) -> None:
        """Write `key`. `if_none_match`: create only. `if_match`: compare-and-swap, write only if the
        object's tag (`get_if_changed`) is still this one. Either refused: Conflict, nothing written."""
        ...

    def get_bytes(self, key: str) -> bytes: ...

    def get_if_changed(self, key: str, etag: str | None) -> Tagged | None:
        """A conditional GET: None if the object's tag is still `etag` (nothing is transferred),
        else its bytes and new tag. A warm function re-reads its alias this way (HTTP 304)."""
        ...

    def download(self, key: str, path: Path, expected: FileEntry | None = None) -> FileEntry:
        """Write `key`'s bytes to `path`, hashing them as they arrive (no second read of the
        file); return their size and sha256. With `expected`, IntegrityError naming the key
        unless they match it. A download that fails for any reason leaves nothing at `path`."""
        ...

    def exists(self, key: str) -> bool: ...

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under `prefix`, sorted."""
        ...


def supports_conditional_writes(store: ArtifactStore) -> bool:
    return bool(getattr(type(store), "conditional_writes", False))


def check_conditions(if_none_match: bool, if_match: str | None) -> None:
    if if_none_match and if_match is not None:
        raise ValueError("put_bytes: give if_none_match (create only) or if_match (swap), not both")
