"""int8 in the cloud (issue 22): a version's `model.int8.onnx`, made before the version is published.

A function with `serving.precision = "int8"` in models.toml serves the version's int8 graph and
never fetches its fp32 one. That graph is the one `modelfn export-edge` ships to devices, made by
the same code (edge/int8.py: the task's quantization, then fp32 against int8 on the real test
data through the bundle's runner) and held to the same `[models.<name>.edge]` threshold. Here it
becomes a file of a version, hashed in its manifest beside a `QuantizationRecord` (mode, figures,
data, threshold), before anything is published; past the threshold nothing is written and the
refusal gives the figures and what to change. Two ways in:

- `modelfn train MODEL` of a model at precision int8: the freshly trained version, not yet
  published, gains the graph under its own version id (`add_int8_graph`);
- `modelfn quantize MODEL [--version V]`: a published version is fetched and a new version is
  derived from it, its files and the int8 graph, its record naming the source version
  (`derive_int8_version`): published versions are immutable, so none is changed.

It lives on the top floor because it joins two floors that stand side by side: the edge
exporter's quantizer and the artifact a function serves.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from edge.int8 import quantize_and_score
from edge.parity import TestData
from modelfn.artifact import (
    INT8_ONNX_FILE,
    MANIFEST_FILE,
    ArtifactError,
    FileEntry,
    Manifest,
    QuantizationRecord,
    commit_version,
    new_version,
    sha256_bytes,
    verify_artifact,
)
from modelfn.registry import ModelEntry, registry_path

# The [models.<name>.edge] key that holds each task's threshold.
THRESHOLD_KEYS = {
    "language-modeling": "max_perplexity_increase",
    "feature-extraction": "min_cosine_similarity",
}


class Int8Refused(ArtifactError):
    """The int8 graph loses more than the registry's threshold: nothing was published."""


def quantized(
    folder: Path, manifest: Manifest, entry: ModelEntry, data: TestData, *, source: str | None
) -> tuple[bytes, QuantizationRecord]:
    """The int8 graph of the verified artifact in `folder` and its record; Int8Refused, with the
    figures and what to change, when it loses more than `entry`'s threshold. `source` is the
    published version the graph will be added to a copy of (None: the version itself)."""
    import onnxruntime

    with tempfile.TemporaryDirectory(prefix="modelfn-int8-") as stage:
        scored = quantize_and_score(folder, manifest, data, entry.edge, Path(stage))
    figures = ", ".join(f"{k} {v}" for k, v in scored.figures.items())
    if scored.refused is not None:
        key = THRESHOLD_KEYS.get(manifest.task, "max_accuracy_drop")
        raise Int8Refused(
            f"{manifest.name} {manifest.version}: int8 refused, nothing published: "
            f"{scored.refused} (on {data.source}; {scored.mode} int8; {figures}). To serve int8 "
            f"anyway, loosen [models.{manifest.name}.edge] {key} in {registry_path()}; to serve "
            f'this version as it is, set [models.{manifest.name}.serving] precision = "fp32"'
        )
    record = QuantizationRecord(
        mode=scored.mode,
        threshold=scored.threshold,
        verdict=scored.verdict,
        figures=scored.figures,
        test_data=data.source,
        source_version=source,
        onnxruntime=onnxruntime.__version__,
    )
    return scored.graph, record


def _with_int8(
    manifest: Manifest, graph: bytes, record: QuantizationRecord, **update: object
) -> Manifest:
    """`manifest` listing the int8 graph and its record (validated again, as a new manifest is)."""
    files = {
        **manifest.files,
        INT8_ONNX_FILE: FileEntry(sha256=sha256_bytes(graph), size=len(graph)),
    }
    return Manifest.model_validate(
        {**manifest.model_dump(), **update, "files": files, "quantization": record}
    )


def add_int8_graph(folder: Path, entry: ModelEntry, data: TestData) -> Manifest:
    """Quantize the unpublished version in `folder` and make the int8 graph a file of it.

    Only for a version not yet published (a fresh training run's build folder): its manifest is
    rewritten, last and atomically. Refused (Int8Refused) before anything is written.
    """
    manifest = verify_artifact(folder)
    if INT8_ONNX_FILE in manifest.files:
        return manifest
    graph, record = quantized(folder, manifest, entry, data, source=None)
    updated = _with_int8(manifest, graph, record)
    (folder / INT8_ONNX_FILE).write_bytes(graph)
    staged = folder / f".{MANIFEST_FILE}.int8"
    staged.write_bytes(updated.to_json())
    os.replace(staged, folder / MANIFEST_FILE)
    return verify_artifact(folder, updated)


def derive_int8_version(
    folder: Path, entry: ModelEntry, data: TestData, out_dir: Path, now: datetime | None = None
) -> Path:
    """A new version under `out_dir/<model>/`: every file of the verified version in `folder`
    and its int8 graph, the record naming `folder`'s version as its source. Its id keeps the
    source's suffix (the weights it names are the same) with the time of derivation."""
    manifest = verify_artifact(folder)
    if INT8_ONNX_FILE in manifest.files:
        raise ArtifactError(
            f"{manifest.name} {manifest.version} already has {INT8_ONNX_FILE} (quantized "
            f"{manifest.quantization.mode if manifest.quantization else ''}); a function at "
            "precision int8 serves it as it is"
        )
    graph, record = quantized(folder, manifest, entry, data, source=manifest.version)
    suffix = manifest.version.rsplit("-", 1)[1]
    created = now or datetime.now(UTC)
    if new_version(suffix, created) == manifest.version:
        # Trained and quantized within one second (a tiny model): the id is a second's
        # resolution, so the derived version waits for the next second to get one of its own.
        time.sleep(1 - created.microsecond / 1e6)
        created = datetime.now(UTC)
    version = new_version(suffix, created)
    parent = out_dir / manifest.name
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{version}-"))
    try:
        for name in manifest.files:
            shutil.copyfile(folder / name, staging / name)
        (staging / INT8_ONNX_FILE).write_bytes(graph)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    derived = _with_int8(manifest, graph, record, version=version, created_at=created)
    return commit_version(staging, derived)


def describe(manifest: Manifest) -> str:
    """The int8 graph of `manifest` in one line: its mode, size against fp32 and the verdict."""
    record = manifest.quantization
    if record is None:
        return f"{manifest.name} {manifest.version} has no int8 graph"
    ratio = record.figures.get("size_ratio")
    size = f", {ratio:.1%} of fp32's bytes" if ratio is not None else ""
    return f"int8 ({record.mode}{size}): {record.verdict}; threshold: {record.threshold}"
