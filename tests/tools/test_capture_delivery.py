"""Capture records from a function's log to the store's capture keys, and back (issue 23 item 4):
whole lines only, nothing twice, the Firehose key layout, gzip objects read back, `since`."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from modelfn.capture import CaptureRecord, batch_objects, capture_key, read_captured
from modelfn.store import LocalStore, S3Store
from tests.support.aws import fake_aws_env
from tools.local.capture_delivery import CaptureDelivery

VERSION = "20261207T120000Z-0123abcd"
OTHER = "20261208T090000Z-89abcdef"


def record(when: datetime, version: str = VERSION, n: int = 0) -> CaptureRecord:
    return CaptureRecord(
        service="modelfn-cifar10-cnn",
        request_id=f"req-{n}",
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        time=when,
        model="cifar10-cnn",
        version=version,
        route="POST /models/{name}/predict",
        status=200,
        latency_ms=3.5,
        features=[{"brightness": 100.0 + n, "width": 32.0, "height": 32.0}],
        outputs=[{"label": "cat", "score": 0.9}],
    )


def line(r: CaptureRecord) -> str:
    return r.model_dump_json(exclude_none=True) + "\n"


def test_records_land_under_the_firehose_layout_once_each(tmp_path: Path) -> None:
    log = tmp_path / "cifar10-cnn.log"
    log.write_text('{"message": "before this run"}\n')  # an older run's line: not delivered
    store = LocalStore(tmp_path / "store")
    delivery = CaptureDelivery(store, [log], interval_s=3600)
    day1 = datetime(2026, 12, 7, 23, 59, 30, tzinfo=UTC)
    first, second = record(day1, n=1), record(day1 + timedelta(minutes=1), OTHER, n=2)
    request_line = json.dumps({"message": "request", "model": "cifar10-cnn", "status": 200})
    half = line(second)
    with log.open("a") as fh:
        fh.write(request_line + "\n" + line(first) + "Traceback (most recent call last):\n")
        fh.write(half[:40])  # the function is still writing this one
    assert delivery.deliver() == 1
    with log.open("a") as fh:
        fh.write(half[40:])
    assert delivery.deliver() == 1
    assert delivery.deliver() == 0  # nothing twice
    keys = store.list_keys("capture/")
    assert [k.rsplit("/", 1)[0] for k in keys] == [
        f"capture/cifar10-cnn/{VERSION}/2026/12/07",
        f"capture/cifar10-cnn/{OTHER}/2026/12/08",  # 00:00:30 the next day, UTC
    ]
    assert all(k.endswith(".jsonl") for k in keys)
    assert read_captured(store, "cifar10-cnn") == [first, second]
    assert read_captured(store, "cifar10-cnn", version=OTHER) == [second]
    assert read_captured(store, "cifar10-cnn", since=day1 + timedelta(seconds=1)) == [second]
    assert read_captured(store, "imdb-sentiment") == []


def test_stop_delivers_what_is_left(tmp_path: Path) -> None:
    log = tmp_path / "cifar10-cnn.log"
    store = LocalStore(tmp_path / "store")
    delivery = CaptureDelivery(store, [log], interval_s=3600)
    delivery.start()
    log.write_text(line(record(datetime.now(UTC), n=3)))
    delivery.stop()
    assert [r.request_id for r in read_captured(store, "cifar10-cnn")] == ["req-3"]


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    fake_aws_env(monkeypatch)
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="artifacts")
        yield S3Store("artifacts")


def test_gzip_objects_as_a_compressing_stream_writes_them_are_read(s3: S3Store) -> None:
    when = datetime(2026, 12, 7, 10, tzinfo=UTC)
    records = [record(when + timedelta(seconds=i), n=i) for i in range(3)]
    [(key, body)] = batch_objects(records, "stream-1").items()
    assert key == capture_key("cifar10-cnn", VERSION, when, "stream-1.jsonl")
    s3.put_bytes(key.replace(".jsonl", ".gz"), gzip.compress(body))
    assert read_captured(s3, "cifar10-cnn") == records


def test_a_record_filed_under_another_version_is_read_as_its_own(tmp_path: Path) -> None:
    """A batch that a stream filed by its first record's version still reads right."""
    store = LocalStore(tmp_path / "store")
    when = datetime(2026, 12, 7, 10, tzinfo=UTC)
    mixed = [record(when, n=1), record(when, OTHER, n=2)]
    body = "".join(line(r) for r in mixed).encode()
    store.put_bytes(capture_key("cifar10-cnn", VERSION, when, "batch.jsonl"), body)
    assert read_captured(store, "cifar10-cnn", version=OTHER) == [mixed[1]]
    assert read_captured(store, "cifar10-cnn", version=VERSION) == [mixed[0]]
