"""The limit a function's cold start is measured against (bench/sweep.py), one process each:

    python bench/plain_s3.py read ENDPOINT BUCKET OUT_DIR WAY KEY...
    python bench/plain_s3.py session FOLDER

`read`: the same keys from the same server with a plain boto3 client, no hashing, no checks,
into OUT_DIR, the files 4 at once (the function's FETCH_FILES_AT_ONCE), in one of WAYS:
- `get-object`: one GetObject per file, its body streamed to the file in 1 MiB pieces;
- `transfer-one-get`: boto3's transfer manager (`download_file`) with a TransferConfig whose
  multipart threshold no file reaches: one GET per file, written by s3transfer's IO thread;
- `transfer-ranged`: the transfer manager splitting each file into 4 ranged GETs on 4 threads;
- `get-object-sha256`: `get-object` with sha256 over each stream as it is written, what the
  function's fetch must add (its manifest check); a reference beside the limit, not part of it.
Prints one JSON line: the seconds from creating the client to the last file closed.

`session`: a bare onnxruntime InferenceSession of FOLDER/model.onnx from local disk, with the
options the function builds its session with (functions/onnx_session.session_options); prints the
seconds the constructor took.

Run by path under python3.12 with the built assets and the runtime's boto3 on sys.path (bench/
run.py's lambda_launch), as the function is, so both use the same boto3 and onnxruntime builds.
`patient_store` is the sweep's publisher: moto assembles a multipart upload in the one request
that completes it, which takes longer than the function client's 5 s read timeout for a 1 GB file.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

WAYS = ("get-object", "transfer-one-get", "transfer-ranged")
HASHED = "get-object-sha256"
FILES_AT_ONCE = 4
CHUNK = 1 << 20
MiB = 1 << 20
FAKE = {  # tools/local/s3_server.FAKE_CREDENTIALS; this script runs without the repository
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "aws_session_token": "testing",
    "region_name": "us-east-1",
}


def read(endpoint: str, bucket: str, out: Path, way: str, keys: list[str]) -> float:
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    started = time.perf_counter()
    client = boto3.client(
        "s3", endpoint_url=endpoint, config=Config(max_pool_connections=32), **FAKE
    )

    def one(key: str) -> None:
        target = out / key.rsplit("/", 1)[-1]
        if way in ("get-object", HASHED):
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
            digest = hashlib.sha256() if way == HASHED else None
            with target.open("wb") as file:
                for chunk in body.iter_chunks(CHUNK):
                    file.write(chunk)
                    if digest is not None:
                        digest.update(chunk)
            return
        if way == "transfer-one-get":
            config = TransferConfig(multipart_threshold=1 << 50, io_chunksize=CHUNK)
        else:
            size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
            part = max(5 * MiB, -(-size // 4))  # 4 parts (S3's smallest part is 5 MiB)
            config = TransferConfig(
                multipart_threshold=5 * MiB, multipart_chunksize=part, max_concurrency=4,
                io_chunksize=CHUNK,
            )  # fmt: skip
        client.download_file(bucket, key, str(target), Config=config)

    with ThreadPoolExecutor(FILES_AT_ONCE) as pool:
        list(pool.map(one, keys))
    return time.perf_counter() - started


def session(folder: Path) -> float:
    import onnxruntime as ort

    from functions.onnx_session import session_options

    options = session_options(ort, optimize=True)
    started = time.perf_counter()
    ort.InferenceSession(
        str(folder / "model.onnx"), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return time.perf_counter() - started


def patient_store(endpoint: str, bucket: str) -> Any:
    """An S3Store on the moto server whose client waits up to 10 minutes for an answer."""
    import boto3
    from botocore.config import Config

    from modelfn.store import S3Store

    config = Config(read_timeout=600, retries={"mode": "standard", "total_max_attempts": 1})
    client = boto3.client("s3", endpoint_url=endpoint, config=config, **FAKE)
    return S3Store(bucket, endpoint_url=endpoint, client=client)


def main() -> None:
    mode, *args = sys.argv[1:]
    if mode == "read":
        endpoint, bucket, out, way, *keys = args
        if way not in (*WAYS, HASHED):
            raise SystemExit(f"way {way!r}: expected one of {', '.join((*WAYS, HASHED))}")
        seconds = read(endpoint, bucket, Path(out), way, keys)
    elif mode == "session":
        seconds = session(Path(args[0]))
    else:
        raise SystemExit(f"mode {mode!r}: expected read or session")
    print(json.dumps({"seconds": seconds}), flush=True)


if __name__ == "__main__":
    main()
