"""How fast a version file comes down from S3, hashed, against the plain clients' limit.

    .venv/bin/python -m bench.fetch --mib 64 512 --runs 3

Starts moto's S3 server on 127.0.0.1 (tools/local/s3_server.py), puts one object of random bytes
per size, and times, per run, into a fresh file under a temporary folder:
- `before`: what fetch_artifact did before issue 22 item 2: boto3's `download_file` (s3transfer,
  default TransferConfig) then `sha256_file`, a second read of the file to verify it;
- `modelfn`: `S3Store.download` with the manifest's entry: ranged parts on threads (8 MiB, 8 at
  once), hashed in order as they arrive, checked, no second read;
- `modelfn-one-get`: the same store with the parts off (one GET, hashed as it streams);
- `bare-ranged`: the limit, parallel ranged GETs of the same parts written at their offsets,
  no hashing, no checks;
- `bare-one-get`: one GET streamed to the file, no hashing.
Prints the median seconds and MB/s (min and max in brackets) of each. The CRT client (awscrt) is
not in requirements.lock, so it is not measured.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from modelfn.artifact import FileEntry, sha256_file
from modelfn.store.hashing import CHUNK_BYTES, MiB, byte_ranges
from modelfn.store.s3 import PART_BYTES, PART_CONCURRENCY, S3Store
from tools.local.s3_server import FAKE_CREDENTIALS, moto_s3_server

BUCKET = "bench-fetch"


def before(store: S3Store, key: str, path: Path, entry: FileEntry) -> None:
    store.client.download_file(BUCKET, key, str(path))
    assert sha256_file(path) == entry.sha256


def modelfn(store: S3Store, key: str, path: Path, entry: FileEntry) -> None:
    store.download(key, path, entry)


def bare_ranged(store: S3Store, key: str, path: Path, entry: FileEntry) -> None:
    def part(fd: int, start: int, end: int) -> None:
        body = store.client.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={start}-{end}")
        os.pwrite(fd, body["Body"].read(), start)

    with path.open("wb") as file, ThreadPoolExecutor(PART_CONCURRENCY) as pool:
        ranges = byte_ranges(0, entry.size, PART_BYTES)
        list(pool.map(lambda r: part(file.fileno(), *r), ranges))


def bare_one_get(store: S3Store, key: str, path: Path, entry: FileEntry) -> None:
    body = store.client.get_object(Bucket=BUCKET, Key=key)["Body"]
    with path.open("wb") as file:
        for chunk in body.iter_chunks(CHUNK_BYTES):
            file.write(chunk)


Way = Callable[[S3Store, str, Path, FileEntry], None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with moto_s3_server() as endpoint, tempfile.TemporaryDirectory() as scratch:
        kwargs: dict[str, Any] = {"endpoint_url": endpoint, "credentials": FAKE_CREDENTIALS}
        store = S3Store(BUCKET, **kwargs)
        store.ensure_bucket()
        ways: dict[str, tuple[S3Store, Way]] = {
            "before": (store, before),
            "modelfn": (store, modelfn),
            "modelfn-one-get": (S3Store(BUCKET, parallel_min_bytes=1 << 50, **kwargs), modelfn),
            "bare-ranged": (store, bare_ranged),
            "bare-one-get": (store, bare_one_get),
        }
        for mib in args.mib:
            data = os.urandom(mib * MiB)
            entry = FileEntry(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
            source = Path(scratch) / "source"
            source.write_bytes(data)
            del data
            key = f"bench/{mib}"
            store.put_file(key, source)
            seconds: dict[str, list[float]] = {name: [] for name in ways}
            for _ in range(args.runs):  # interleaved, so a busy moment hits every way alike
                for name, (way_store, way) in ways.items():
                    target = Path(scratch) / "target"
                    started = time.perf_counter()
                    way(way_store, key, target, entry)
                    seconds[name].append(time.perf_counter() - started)
                    target.unlink()
            for name, runs in seconds.items():
                median = statistics.median(runs)
                print(
                    f"{mib:5d} MiB  {name:16s} {median:6.2f} s  {mib * MiB / 1e6 / median:7.1f} MB/s"
                    f"  [{min(runs):.2f}-{max(runs):.2f} s, {args.runs} runs]"
                )


if __name__ == "__main__":
    main()
