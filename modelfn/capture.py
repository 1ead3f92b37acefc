"""Sampled capture: the record a function writes for a sampled request, and where records are kept.

Opt-in per model (`[models.X.capture]` in models.toml). A sampled request that was answered
(2xx) becomes one `CaptureRecord`, written by the function as one JSON line on its log stream
(functions/capture.py), the same stream as its request line. Lambda hands that line to CloudWatch
Logs before the invocation returns, so a sandbox frozen or recycled after answering loses nothing,
and the request pays for one short write, not a network call. From there:
- deployed: a subscription filter on the function's log group (`{ $.message = "capture" }`) sends
  the records to an Amazon Data Firehose stream, which writes them, one JSON object per line, to
  `capture/<model>/<version>/YYYY/MM/DD/` in the stage's artifact bucket (infra/);
- locally: `modelfn serve` delivers the records of each function's log to the same keys in the
  local store (tools/local/capture_delivery.py).
`modelfn drift` reads them back with `read_captured`.

A record holds derived features of the inputs (modelfn/input_features.py), never a text or a
pixel, unless the model's entry says `raw = true` (which the synth allows only into a KMS-encrypted
bucket and log group).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelfn.artifact import VERSION_PATTERN
from modelfn.store import ArtifactStore

CAPTURE_PREFIX = "capture"
CAPTURE_MESSAGE = "capture"
# The function's environment, which infra/ and `modelfn serve` write from the model's entry.
SAMPLE_RATE_ENV = "MODELFN_CAPTURE_SAMPLE_RATE"
RAW_ENV = "MODELFN_CAPTURE_RAW"
# One CloudWatch Logs event holds at most 256 KiB: raw inputs past this are left out of the
# record (and `raw_omitted` says why) rather than cut off mid-JSON.
MAX_RAW_BYTES = 200_000


class CaptureEntry(BaseModel):
    """`[models.X.capture]`: which share of the model's answered requests is recorded, and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The fraction of answered requests recorded (0.1 = one in ten); 0 turns capture off.
    sample_rate: float = Field(default=0.0, ge=0, le=1)
    # Record the request's inputs as sent (texts, images) beside their features. Off by default:
    # a record then holds no text and no pixel. On, it needs a KMS-encrypted bucket and log group.
    raw: bool = False

    @property
    def enabled(self) -> bool:
        return self.sample_rate > 0


class CaptureRecord(BaseModel):
    """One captured request, as the function writes it and as Firehose delivers it."""

    model_config = ConfigDict(extra="forbid")

    level: Literal["INFO"] = "INFO"
    message: Literal["capture"] = "capture"  # CAPTURE_MESSAGE, what the log filter matches
    service: str
    request_id: str
    trace_id: str | None = None
    time: datetime
    model: str
    version: str = Field(pattern=VERSION_PATTERN)
    precision: str | None = None
    route: str
    status: int
    latency_ms: float
    features: list[dict[str, float]] = Field(
        description="Per input, in order: its derived features (modelfn/input_features.py)."
    )
    outputs: list[Any] | None = Field(
        default=None,
        description="Per input, in order: the answer (a classifier's label and score); None where "
        "the route answers tensors.",
    )
    raw: list[Any] | None = Field(default=None, description="The inputs as sent, where raw = true.")
    raw_omitted: str | None = None


def capture_prefix(model: str, version: str | None = None) -> str:
    return f"{CAPTURE_PREFIX}/{model}/" + (f"{version}/" if version else "")


def capture_key(model: str, version: str, when: datetime, name: str) -> str:
    """`capture/<model>/<version>/YYYY/MM/DD/<name>`: the day in UTC, as Firehose writes it."""
    day = when.astimezone(UTC).strftime("%Y/%m/%d")
    return f"{capture_prefix(model, version)}{day}/{name}"


def records_in_lines(lines: Iterable[dict[str, Any]]) -> list[CaptureRecord]:
    """The capture records among a function's JSON log lines (request lines and events skipped)."""
    records = []
    for line in lines:
        if line.get("message") == CAPTURE_MESSAGE:
            try:
                records.append(CaptureRecord.model_validate(line))
            except ValidationError:
                continue  # not one of ours: a user's log line that happens to say "capture"
    return records


def batch_objects(records: Iterable[CaptureRecord], batch: str) -> dict[str, bytes]:
    """Records grouped into one object per model, version and day, one JSON object per line,
    as a Firehose delivery writes them; `batch` names the objects (unique per delivery)."""
    grouped: dict[str, list[str]] = {}
    for record in records:
        key = capture_key(record.model, record.version, record.time, f"{batch}.jsonl")
        grouped.setdefault(key, []).append(record.model_dump_json(exclude_none=True))
    return {key: ("\n".join(lines) + "\n").encode() for key, lines in grouped.items()}


def _day_of(key: str, prefix: str) -> str | None:
    """'YYYY/MM/DD' of a key under `capture/<model>/`, or None for a key of another layout."""
    parts = key[len(prefix) :].split("/")
    return "/".join(parts[1:4]) if len(parts) >= 5 else None


def read_captured(
    store: ArtifactStore,
    model: str,
    *,
    since: datetime | None = None,
    version: str | None = None,
) -> list[CaptureRecord]:
    """Every record captured for `model` (one version's, where given) at or after `since`, oldest
    first. Objects may be gzip-compressed (a Firehose stream set to compress) or plain.

    The version is read from each record, not from its key: a stream partitions a batch of log
    events by its first record's keys if it does not split batches (unverified without a deploy,
    docs/deploy.md), and a batch written across an alias move names two versions."""
    prefix = capture_prefix(model)
    first_day = since.astimezone(UTC).strftime("%Y/%m/%d") if since else None
    records: list[CaptureRecord] = []
    for key in store.list_keys(prefix):
        day = _day_of(key, prefix)
        if day is None or (first_day is not None and day < first_day):
            continue  # whole days before `since` are never read
        data = store.get_bytes(key)
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        for text in data.decode("utf-8").splitlines():
            if text.strip():
                records.extend(records_in_lines([json.loads(text)]))
    records = [
        r
        for r in records
        if (since is None or r.time >= since) and (version is None or r.version == version)
    ]
    return sorted(records, key=lambda r: r.time)
