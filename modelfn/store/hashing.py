"""Downloads hashed as the bytes arrive: one stream, or byte ranges fetched in parallel.

A store's `download` writes the object's bytes to the file and feeds the same bytes, from memory,
to sha256 on the way, so checking them against the manifest needs no second read of the file.

One stream (`HashingWriter.write_all`, S3's one GET) is read on the calling thread while a second
thread writes and hashes what already arrived: done in turn, a 1 GB GET from the local moto server
took 4.96 s (median of 5) against 3.65 s for the bare stream, and 3.90 s with the second thread
(client in its own process, runs interleaved, load average 3.5 to 4 on 2 cores).

sha256 is a chain over the bytes in order and cannot be split across threads. `fetch_parts` has a
pool of threads fetch the byte ranges, each writing its part straight to its offset in the file,
while the calling thread hashes the parts in order as they complete (hashlib releases the GIL, so
hashing overlaps the parts still in flight). At most `window` parts are held in memory at once
(fetched, not yet hashed): memory is bounded by window x part size, whatever the file's size.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

from modelfn.artifact import FileEntry

MiB = 1 << 20
# Reads and writes of a stream in 1 MiB pieces: large enough that per-call overhead vanishes,
# small enough that a resumed download re-requests little.
CHUNK_BYTES = MiB

# Chunks read ahead of the writer and hasher: memory held is at most this many CHUNK_BYTES.
CHUNKS_AHEAD = 8

# (start, end) of a part, both inclusive, as an HTTP Range names them.
ByteRange = tuple[int, int]


class HashingWriter:
    """Writes a stream to `file` and hashes it on the way; `entry()` is what arrived."""

    def __init__(self, file: BinaryIO) -> None:
        self.file, self.size, self._digest = file, 0, hashlib.sha256()

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)
        self._digest.update(chunk)
        self.size += len(chunk)

    def write_all(self, chunks: Iterable[bytes]) -> None:
        """Write and hash `chunks` on a second thread while this one reads the next (hashlib and
        file writes release the GIL). On return or raise, every chunk read was written and
        hashed, so `size` is where a resumed download starts; a write's error (a full /tmp) is
        raised over the reader's."""
        ahead: queue.Queue[bytes | None] = queue.Queue(CHUNKS_AHEAD)
        failed: list[BaseException] = []

        def drain() -> None:
            while (chunk := ahead.get()) is not None:
                if not failed:  # after a failure, drop the rest so the reader never blocks
                    try:
                        self.write(chunk)
                    except BaseException as exc:  # noqa: BLE001 - raised on the caller's thread
                        failed.append(exc)

        writer = threading.Thread(target=drain, name="modelfn-hash", daemon=True)
        writer.start()
        try:
            for chunk in chunks:
                if failed:
                    break
                ahead.put(chunk)
        finally:
            ahead.put(None)
            writer.join()
            if failed:
                raise failed[0]

    def entry(self) -> FileEntry:
        return FileEntry(sha256=self._digest.hexdigest(), size=self.size)


def byte_ranges(start: int, size: int, part_bytes: int) -> list[ByteRange]:
    """The parts of bytes [start, size), each `part_bytes` long but the last."""
    return [(at, min(at + part_bytes, size) - 1) for at in range(start, size, part_bytes)]


def fetch_parts(
    read_part: Callable[[int, int], bytes | bytearray],
    fd: int,
    first: bytes | bytearray,
    size: int,
    *,
    part_bytes: int,
    concurrency: int,
) -> FileEntry:
    """Fetch bytes [len(first), size) with `read_part(start, end)` on `concurrency` threads, write
    each part at its offset of the open file `fd` and hash them in order after `first` (bytes
    from offset 0, already fetched). `read_part` returns exactly the range's bytes or raises.

    On any failure the parts not yet started are cancelled, the running ones finish (each is
    bounded by the client's timeouts), and the first error in file order is raised; the file is
    then incomplete, and the caller removes it.
    """
    digest = hashlib.sha256(first)
    os.pwrite(fd, first, 0)
    ranges = iter(byte_ranges(len(first), size, part_bytes))
    # Two parts beyond the threads: the next part to hash is usually done before the hasher asks.
    window = concurrency + 2

    def fetch(start: int, end: int) -> bytes | bytearray:
        data = read_part(start, end)
        os.pwrite(fd, data, start)
        return data

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="modelfn-part") as pool:
        pending: deque[Future[bytes | bytearray]] = deque()

        def submit_next() -> None:
            part = next(ranges, None)
            if part is not None:
                pending.append(pool.submit(fetch, *part))

        for _ in range(window):
            submit_next()
        try:
            while pending:
                digest.update(pending.popleft().result())
                submit_next()
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return FileEntry(sha256=digest.hexdigest(), size=size)
