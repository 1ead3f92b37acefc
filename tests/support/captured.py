"""Capture records in a store, as a function's deliveries leave them, for the drift tests.

A version published with reference statistics (as training records them), and one record per
input holding the input's features (modelfn/input_features.py), written under the keys a
Firehose delivery writes (`batch_objects`), so `modelfn drift` reads them as it would a stage's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from modelfn.capture import CaptureRecord, batch_objects
from modelfn.reference_stats import ReferenceStats
from modelfn.registry import service_name
from modelfn.store import ArtifactStore, publish_artifact
from tests.support.manifests import write_artifact


def publish_with_reference(
    store: ArtifactStore,
    root: Path,
    name: str,
    reference: ReferenceStats | None,
    weights: bytes = b"weights",
) -> str:
    """Publish a version of `name` whose manifest carries `reference`; return the version (other
    `weights` make another). Drift reads the manifest's reference only, so the rest of the
    version is write_artifact's stand-in."""
    folder = write_artifact(root, name=name, weights=weights, reference=reference)
    return publish_artifact(store, folder).version


def capture_records(
    model: str,
    version: str,
    features: Sequence[Mapping[str, float]],
    *,
    start: datetime | None = None,
    every: timedelta = timedelta(seconds=10),
    outputs: Sequence[Any] | None = None,
) -> list[CaptureRecord]:
    """One answered request per input, `every` apart from `start` (default: an hour ago)."""
    first = start or datetime.now(UTC) - timedelta(hours=1)
    return [
        CaptureRecord(
            service=service_name(model),
            request_id=f"req-{i:05d}",
            time=first + i * every,
            model=model,
            version=version,
            route=f"/models/{model}/predict",
            status=200,
            latency_ms=12.5,
            features=[dict(f)],
            outputs=None if outputs is None else [outputs[i]],
        )
        for i, f in enumerate(features)
    ]


def put_records(store: ArtifactStore, records: Sequence[CaptureRecord], batch: str) -> None:
    for key, data in batch_objects(records, batch).items():
        store.put_bytes(key, data)
