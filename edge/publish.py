"""Edge bundles in an artifact store, under `edge/<model>/<version>/`, with the artifacts' rules.

Publish writes the bundle, then `bundle.json` (an `EdgeRecord`: its file name, sha256 and size)
last, so a reader that finds the record finds a whole bundle; a published bundle is immutable.
Fetch reads the record, downloads the bundle, and refuses it unless its sha256 matches the record
and its members match their SHA256SUMS.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from edge.bundle import BUNDLE_SUFFIX, EdgeManifest, read_bundle
from modelfn.artifact import (
    MODEL_NAME_MAX,
    MODEL_NAME_PATTERN,
    VERSION_PATTERN,
    ArtifactError,
    FileEntry,
    IntegrityError,
    edge_prefix,
    is_model_name,
    is_version,
    sha256_file,
)
from modelfn.store.base import ArtifactStore, NotFound, StoreError

RECORD_FILE = "bundle.json"


class EdgeRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(pattern=MODEL_NAME_PATTERN, max_length=MODEL_NAME_MAX)
    version: str = Field(pattern=VERSION_PATTERN)
    file: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*\.edge\.tar\.gz$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0, description="Bytes.")
    int8: bool = Field(description="Whether the bundle ships an int8 graph.")

    def to_json(self) -> bytes:
        return (self.model_dump_json(indent=2) + "\n").encode("utf-8")


def publish_bundle(store: ArtifactStore, path: Path) -> EdgeRecord:
    """Verify the bundle at `path`, upload it, then its record. Raises StoreError if published."""
    manifest, _ = read_bundle(path)
    prefix = edge_prefix(manifest.model, manifest.version)
    if store.exists(f"{prefix}/{RECORD_FILE}"):
        raise StoreError(
            f"the edge bundle of {manifest.model} {manifest.version} is already published in "
            f"{store.uri}/{prefix}; bundles are immutable, like the versions they come from"
        )
    record = EdgeRecord(
        model=manifest.model,
        version=manifest.version,
        file=path.name,
        sha256=sha256_file(path),
        size=path.stat().st_size,
        int8=manifest.graphs.int8 is not None,
    )
    store.put_file(f"{prefix}/{record.file}", path)
    store.put_bytes(f"{prefix}/{RECORD_FILE}", record.to_json())
    return record


def fetch_bundle(
    store: ArtifactStore, model: str, version: str, dest: Path
) -> tuple[EdgeManifest, Path]:
    """Download and verify the edge bundle of `model` `version` into `dest`; return its path."""
    if not is_model_name(model) or not is_version(version):
        raise ArtifactError(
            f"{model!r} {version!r}: expected a model name and a version (YYYYMMDDTHHMMSSZ-xxxxxxxx)"
        )
    prefix = edge_prefix(model, version)
    try:
        raw = store.get_bytes(f"{prefix}/{RECORD_FILE}")
    except NotFound:
        raise NotFound(
            f"no edge bundle of {model} {version} in {store.uri}; export one with "
            f"`modelfn export-edge {model} --version {version} --publish`"
        ) from None
    try:
        record = EdgeRecord.model_validate_json(raw)
    except ValueError as exc:
        raise ArtifactError(
            f"{store.uri}/{prefix}/{RECORD_FILE} is not a valid edge record: {exc}"
        ) from exc
    if (record.model, record.version) != (model, version) or not record.file.endswith(
        BUNDLE_SUFFIX
    ):
        raise IntegrityError(
            f"{store.uri}/{prefix}/{RECORD_FILE} describes {record.model} {record.version}"
        )
    dest.mkdir(parents=True, exist_ok=True)
    # Download beside the target and rename once verified: no half or bad bundle is left behind.
    with tempfile.TemporaryDirectory(dir=dest, prefix=".edge-") as tmp:
        staged = Path(tmp) / record.file
        try:
            store.download(
                f"{prefix}/{record.file}", staged, FileEntry(sha256=record.sha256, size=record.size)
            )
        except IntegrityError:
            raise IntegrityError(
                f"{store.uri}/{prefix}/{record.file}: bytes do not match {RECORD_FILE}'s sha256; refusing it"
            ) from None
        manifest, _ = read_bundle(staged)
        target = dest / record.file
        staged.replace(target)
    return manifest, target
