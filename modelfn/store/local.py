"""The local-folder backend (the default, under model_artifacts/)."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from modelfn.artifact import FileEntry, check_bytes
from modelfn.store.base import Conflict, NotFound, StoreError, Tagged, check_conditions
from modelfn.store.hashing import CHUNK_BYTES, HashingWriter


class LocalStore:
    # Create-only is a hard link of the finished temp file (link(2) fails if the name exists);
    # compare-and-swap holds an flock on the key's folder while it checks the tag and renames.
    conditional_writes = True

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.uri = f"file://{self.root}"

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise StoreError(f"key {key!r} escapes the store root {self.root}")
        return path

    def _write_atomically(
        self,
        key: str,
        write: Callable[[Path], object],
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> None:
        # Write to a temp file, then rename (or link) it into place: a reader never sees half a
        # file, and a writer killed midway leaves only a `.tmp-` file that list_keys skips.
        check_conditions(if_none_match, if_match)
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        os.close(fd)
        try:
            write(Path(tmp))
            if if_none_match:
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    raise Conflict(f"{key} already exists in {self.uri}; not overwritten") from None
            elif if_match is not None:
                with self._locked(path.parent):
                    # The tag as readers see it, so a caller compares what get_if_changed gave it.
                    try:
                        current = self.get_if_changed(key, None)
                    except NotFound:
                        current = None
                    if current is None or current.etag != if_match:
                        raise Conflict(
                            f"{key} in {self.uri} changed since it was read; not overwritten"
                        )
                    os.replace(tmp, path)
            else:
                os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)

    @contextmanager
    def _locked(self, folder: Path) -> Iterator[None]:
        # flock on the folder itself: no lock file to leave behind, and the kernel releases it
        # when the holder exits, however it exits (SIGKILL included).
        fd = os.open(folder, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def put_file(self, key: str, path: Path, *, if_none_match: bool = False) -> None:
        self._write_atomically(key, lambda tmp: shutil.copyfile(path, tmp), if_none_match)

    def put_bytes(
        self, key: str, data: bytes, *, if_none_match: bool = False, if_match: str | None = None
    ) -> None:
        self._write_atomically(key, lambda tmp: tmp.write_bytes(data), if_none_match, if_match)

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

    def download(self, key: str, path: Path, expected: FileEntry | None = None) -> FileEntry:
        source = self._path(key)
        if not source.is_file():
            raise NotFound(f"{key} not found in {self.uri}")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with source.open("rb") as reader, path.open("wb") as file:
                writer = HashingWriter(file)
                writer.write_all(iter(lambda: reader.read(CHUNK_BYTES), b""))
            got = writer.entry()
            if expected is not None:
                check_bytes(f"{self.uri}/{key} -> {path}", got.size, got.sha256, expected)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return got

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
