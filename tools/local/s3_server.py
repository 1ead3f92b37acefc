"""A moto S3 server on 127.0.0.1: the local stand-in for the artifact bucket (no AWS account)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from modelfn.store import ArtifactStore, S3Store
from modelfn.store.s3 import RANGED_GETS_ENV

LOCAL_BUCKET = "modelfn-artifacts"
# moto accepts any credentials; these keep boto3 from looking for real ones (or using them).
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
FAKE_CREDENTIALS = {  # the same, as boto3 client arguments
    "aws_access_key_id": FAKE_AWS_ENV["AWS_ACCESS_KEY_ID"],
    "aws_secret_access_key": FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    "aws_session_token": FAKE_AWS_ENV["AWS_SESSION_TOKEN"],
    "region_name": FAKE_AWS_ENV["AWS_DEFAULT_REGION"],
}

# What a function reading from the moto server sets: one GET per file. moto answers a ranged GET
# by reading the whole object and slicing it, so parallel ranges of a large file cost their count
# times its size (modelfn/store/s3.py, RANGED_GETS_ENV); AWS S3 does not, and keeps the default.
MOTO_STORE_ENV = {RANGED_GETS_ENV: "0"}


@contextmanager
def moto_s3_server() -> Iterator[str]:
    """Run moto's server on a free loopback port; yield its endpoint URL."""
    import logging

    from moto.server import ThreadedMotoServer

    # moto serves through werkzeug, which logs every request at INFO; keep only its warnings.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def seed(source: ArtifactStore, target: S3Store) -> int:
    """Copy every artifact object of `source` into `target`, aliases last (the publish order).

    Only `<model>/<version>/<file>` and `<model>/aliases/<alias>.json` keys are copied (a README
    beside them is not); returns the count.
    """
    keys = [k for k in source.list_keys("") if k.count("/") == 2]
    ordered = sorted(keys, key=lambda k: ("/aliases/" in k, k.endswith("manifest.json"), k))
    for key in ordered:
        target.put_bytes(key, source.get_bytes(key))
    return len(ordered)
