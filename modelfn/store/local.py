"""The local-folder backend (the default, under model_artifacts/)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from modelfn.store.base import NotFound, StoreError, Tagged


class LocalStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.uri = f"file://{self.root}"

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise StoreError(f"key {key!r} escapes the store root {self.root}")
        return path

    def _write_atomically(self, path: Path, write: Callable[[Path], object]) -> None:
        # Write to a temp file then rename, so a reader never sees half a file.
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        os.close(fd)
        try:
            write(Path(tmp))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, key: str, path: Path) -> None:
        self._write_atomically(self._path(key), lambda tmp: shutil.copyfile(path, tmp))

    def put_bytes(self, key: str, data: bytes) -> None:
        self._write_atomically(self._path(key), lambda tmp: tmp.write_bytes(data))

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise NotFound(f"{key} not found in {self.uri}")
        return path.read_bytes()

    def get_if_changed(self, key: str, etag: str | None) -> Tagged | None:
        # Writes replace the file (a new inode), so inode, size and mtime tag one version of it.
        path = self._path(key)
        try:
            with path.open("rb") as file:
                stat = os.fstat(file.fileno())
                tag = f"{stat.st_ino:x}-{stat.st_size:x}-{stat.st_mtime_ns:x}"
                return None if tag == etag else Tagged(file.read(), tag)
        except FileNotFoundError:
            raise NotFound(f"{key} not found in {self.uri}") from None

    def download(self, key: str, path: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise NotFound(f"{key} not found in {self.uri}")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list_keys(self, prefix: str) -> list[str]:
        # Walk the deepest folder that the prefix names fully, then filter on the whole prefix.
        start = self.root / prefix.rpartition("/")[0] if prefix else self.root
        if not start.is_dir():
            return []
        keys = []
        for path in start.rglob("*"):
            if path.is_file() and not path.name.startswith(".tmp-"):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)
