"""Publishing into and fetching from a store, in the order that keeps readers safe.

Publish: every file, then the manifest, then the alias. A reader starts from the alias, so it
never sees a version whose files are still uploading. Fetch: alias -> manifest (its sha256 must
match the alias) -> files (each sha256 must match the manifest), into a fresh folder that is
renamed into place only once everything verified.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from modelfn.artifact import (
    MANIFEST_FILE,
    Alias,
    ArtifactError,
    IntegrityError,
    Manifest,
    alias_key,
    file_key,
    is_alias,
    is_model_name,
    is_version,
    parse_alias,
    parse_manifest,
    sha256_bytes,
    verify_artifact,
)
from modelfn.store.base import ArtifactStore, NotFound, StoreError


class PublishedModel(BaseModel):
    name: str
    versions: list[str]
    aliases: dict[str, str]  # alias -> version


def publish_artifact(
    store: ArtifactStore, folder: Path, aliases: tuple[str, ...] = ("latest",)
) -> Manifest:
    """Upload the verified artifact in `folder` and point `aliases` at it. Versions are immutable."""
    manifest = verify_artifact(folder)
    manifest_key = file_key(manifest.name, manifest.version, MANIFEST_FILE)
    if store.exists(manifest_key):
        raise StoreError(
            f"{manifest.name} version {manifest.version} is already published in {store.uri}; "
            "versions are immutable: train again for a new version, or point an alias at this one "
            f"with `modelfn alias {manifest.name} {manifest.version} --alias NAME`"
        )
    for name in manifest.files:
        store.put_file(file_key(manifest.name, manifest.version, name), folder / name)
    manifest_bytes = (folder / MANIFEST_FILE).read_bytes()
    store.put_bytes(manifest_key, manifest_bytes)
    for alias in aliases:
        _write_alias(store, manifest.name, alias, manifest.version, sha256_bytes(manifest_bytes))
    return manifest


def set_alias(store: ArtifactStore, model: str, alias: str, version: str) -> Alias:
    """Point `alias` at an already-published `version` (e.g. promote a version to `prod`)."""
    try:
        manifest_bytes = store.get_bytes(file_key(model, version, MANIFEST_FILE))
    except NotFound:
        raise StoreError(f"{model} version {version} is not published in {store.uri}") from None
    parse_manifest(manifest_bytes, source=f"{model}/{version}/{MANIFEST_FILE}")
    return _write_alias(store, model, alias, version, sha256_bytes(manifest_bytes))


def _write_alias(store: ArtifactStore, model: str, alias: str, version: str, manifest_sha: str) -> Alias:
    record = Alias(
        model=model,
        alias=alias,
        version=version,
        manifest_sha256=manifest_sha,
        updated_at=datetime.now(UTC),
    )
    store.put_bytes(alias_key(model, alias), record.to_json())
    return record


def read_alias(store: ArtifactStore, model: str, alias: str) -> Alias:
    key = alias_key(model, alias)
    try:
        data = store.get_bytes(key)
    except NotFound:
        raise NotFound(
            f"model {model!r} has no alias {alias!r} in {store.uri}; publish it first "
            f"(modelfn train {model} --publish {store.uri})"
        ) from None
    return parse_alias(data, source=f"{store.uri}/{key}")


def fetch_artifact(
    store: ArtifactStore, model: str, ref: str, cache_dir: Path, pointer: Alias | None = None
) -> tuple[Manifest, Path]:
    """Download and verify `model` at `ref` (an alias or a version) into `cache_dir/<model>/<version>`.

    A folder already in the cache is re-verified and reused; anything that fails verification is
    refused with `IntegrityError` and never left in the cache. `pointer` is alias `ref` as the
    caller already read it (a warm function's conditional GET), so it is not read twice.
    """
    # Both become path segments of the cache folder: refuse anything that is not a plain name.
    if not is_model_name(model):
        raise ArtifactError(f"{model!r} is not a model name (lower-case words joined by hyphens)")
    if is_version(ref):
        expected_manifest_sha = None
        version = ref
    elif not is_alias(ref):
        raise ArtifactError(f"{ref!r} is neither a version (YYYYMMDDTHHMMSSZ-xxxxxxxx) nor an alias name")
    else:
        if pointer is None:
            pointer = read_alias(store, model, ref)
        elif (pointer.model, pointer.alias) != (model, ref):
            raise ArtifactError(f"alias record {pointer.model}/{pointer.alias} given for {model}/{ref}")
        expected_manifest_sha, version = pointer.manifest_sha256, pointer.version

    target = cache_dir / model / version
    if target.is_dir():
        try:
            manifest = verify_artifact(target)
            if expected_manifest_sha in (None, sha256_bytes((target / MANIFEST_FILE).read_bytes())):
                return manifest, target
        except ArtifactError:
            pass
        shutil.rmtree(target, ignore_errors=True)

    manifest_key = file_key(model, version, MANIFEST_FILE)
    manifest_bytes = store.get_bytes(manifest_key)
    if expected_manifest_sha is not None and sha256_bytes(manifest_bytes) != expected_manifest_sha:
        raise IntegrityError(
            f"{store.uri}/{manifest_key}: sha256 does not match alias {ref!r}; refusing to load"
        )
    manifest = parse_manifest(manifest_bytes, source=f"{store.uri}/{manifest_key}")
    if manifest.name != model or manifest.version != version:
        raise IntegrityError(
            f"{store.uri}/{manifest_key} describes {manifest.name}/{manifest.version}, "
            f"expected {model}/{version}; refusing to load"
        )

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{version}-"))
    try:
        (staging / MANIFEST_FILE).write_bytes(manifest_bytes)
        for name in manifest.files:
            store.download(file_key(model, version, name), staging / name)
        verify_artifact(staging, manifest)
        try:
            staging.rename(target)
        except OSError:
            # Another process sharing the cache finished the same version first: use its copy.
            if not target.is_dir():
                raise
            verify_artifact(target, manifest)
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest, target


def list_published(store: ArtifactStore) -> list[PublishedModel]:
    """Every model in the store with its published versions and aliases."""
    models: dict[str, PublishedModel] = {}
    for key in store.list_keys(""):
        parts = key.split("/")
        if len(parts) != 3:
            continue
        model, middle, leaf = parts
        entry = models.setdefault(model, PublishedModel(name=model, versions=[], aliases={}))
        if middle == "aliases" and leaf.endswith(".json"):
            entry.aliases[leaf[: -len(".json")]] = parse_alias(store.get_bytes(key)).version
        elif leaf == MANIFEST_FILE and is_version(middle):
            entry.versions.append(middle)
    for entry in models.values():
        entry.versions.sort()
    return [models[name] for name in sorted(models)]
