"""Publishing into and fetching from a store, in the order that keeps readers safe.

Publish: every file, then the manifest, then the alias. A reader starts from the alias, so it
never sees a version whose files are still uploading. Fetch: alias -> manifest (its sha256 must
match the alias) -> files (each sha256 must match the manifest), into a fresh folder that is
renamed into place only once everything verified.

Where the store offers conditional writes (both backends do), the store itself enforces this:
- The manifest is the commit point. It is written create-only (If-None-Match: *), so a version's
  manifest is never overwritten, whatever races. A version without one is not published: a publish
  killed before it leaves files that readers never reach, and a retry writes over them.
- Version files are written create-only too; one already there with the bytes the manifest names
  (a killed or retried publish of this artifact) is kept, one with other bytes refuses the publish.
- An alias moves by compare-and-swap (If-Match: the tag of the alias as read). `set_alias` (alias,
  promote, rollback) refuses with AliasMoved when another writer moved the alias since the caller
  read it, so two concurrent promotes never silently lose one. A publish's aliases mean "the most
  recently published version": a publish that loses the swap re-reads and tries again.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel

from modelfn.artifact import (
    MANIFEST_FILE,
    Alias,
    ArtifactError,
    Canary,
    FileEntry,
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
from modelfn.store.base import (
    ArtifactStore,
    Conflict,
    NotFound,
    StoreError,
    supports_conditional_writes,
)

# Files of a version fetched at once. Each costs at least a request's round trip (tens of ms on
# S3), and a version holds a few to a dozen files (graph, weights, reports, plots); the large ones
# move in parallel parts already (S3Store.part_concurrency), so a few at once is enough.
FETCH_FILES_AT_ONCE = 4
# A publish re-reads and swaps its alias again when another writer moved it in between; each lost
# swap means another writer finished, so a handful of tries is plenty. Backoff: up to 50 ms * 2**try.
ALIAS_ATTEMPTS = 5
ALIAS_BACKOFF_S = 0.05


class AliasMoved(Conflict):
    """The alias was moved by another writer after the caller read it; it was left as it is."""


class AliasSeen(NamedTuple):
    """An alias as a writer read it before deciding: its record (None: absent) and its tag."""

    record: Alias | None
    etag: str | None

    @property
    def version(self) -> str | None:
        return self.record.version if self.record else None


class PublishedModel(BaseModel):
    name: str
    versions: list[str]
    aliases: dict[str, str]  # alias -> version (its stable one during a canary rollout)
    canaries: dict[str, str] = {}  # alias -> its canary version, while it names one


def publish_artifact(
    store: ArtifactStore, folder: Path, aliases: tuple[str, ...] = ("latest",)
) -> Manifest:
    """Upload the verified artifact in `folder` and point `aliases` at it. Versions are immutable."""
    manifest = verify_artifact(folder)
    model, version = manifest.name, manifest.version
    manifest_key = file_key(model, version, MANIFEST_FILE)
    already = StoreError(
        f"{model} version {version} is already published in {store.uri}; "
        "versions are immutable: train again for a new version, or point an alias at this one "
        f"with `modelfn alias {model} {version} --alias NAME`"
    )
    # Refuses before uploading anything; the create-only manifest write below is the real guard.
    if store.exists(manifest_key):
        raise already
    manifest_bytes = (folder / MANIFEST_FILE).read_bytes()
    if supports_conditional_writes(store):
        for name, entry in manifest.files.items():
            _create_file(store, file_key(model, version, name), folder / name, entry, version)
        try:
            store.put_bytes(manifest_key, manifest_bytes, if_none_match=True)
        except Conflict:
            # The same bytes: our own retried request landed, or a twin publish of this artifact.
            if store.get_bytes(manifest_key) != manifest_bytes:
                raise already from None
    else:  # check, then write: immutability holds only while no one publishes concurrently
        for name in manifest.files:
            store.put_file(file_key(model, version, name), folder / name)
        store.put_bytes(manifest_key, manifest_bytes)
    for alias in aliases:
        _point_alias_at_newly_published(store, model, alias, version, sha256_bytes(manifest_bytes))
    return manifest


def _create_file(
    store: ArtifactStore, key: str, path: Path, entry: FileEntry, version: str
) -> None:
    try:
        store.put_file(key, path, if_none_match=True)
        return
    except Conflict:
        pass
    # Only a version with no manifest gets here (publish checked), so the file is a leftover of an
    # unfinished publish: keep it if it holds these very bytes.
    with tempfile.TemporaryDirectory(prefix="modelfn-publish-") as scratch:
        try:
            store.download(key, Path(scratch) / "object", entry)
            return
        except IntegrityError:
            pass
    raise StoreError(
        f"{store.uri}/{key} exists with other bytes than this artifact's, left by an unfinished "
        f"publish of another artifact under version {version} (it has no manifest, so it is not "
        f"published); delete the objects under {key.rpartition('/')[0]}/ and publish again"
    )


def _point_alias_at_newly_published(
    store: ArtifactStore, model: str, alias: str, version: str, manifest_sha: str
) -> None:
    # A publish's alias means "the most recently published version", so losing the swap to another
    # publish or promote is not an error: re-read and swap again, and the last to finish wins.
    for attempt in range(ALIAS_ATTEMPTS):
        try:
            _write_alias(
                store, model, alias, version, manifest_sha, read_alias_seen(store, model, alias)
            )
            return
        except Conflict:
            time.sleep(random.uniform(0, ALIAS_BACKOFF_S * 2**attempt))
    raise AliasMoved(
        f"{model} version {version} is published in {store.uri}, but alias {alias!r} kept moving "
        f"under {ALIAS_ATTEMPTS} attempts to point it there; point it with "
        f"`modelfn alias {model} {version} --alias {alias} --store {store.uri}`"
    )


def set_alias(
    store: ArtifactStore,
    model: str,
    alias: str,
    version: str,
    *,
    seen: AliasSeen | None = None,
    canary: str | None = None,
    weight: int | None = None,
) -> Alias:
    """Point `alias` at an already-published `version` (e.g. promote a version to `prod`), and
    with `canary` (another published version) send `weight` percent of its requests to that one.

    `seen` is the alias as the caller read it when it decided (`read_alias_seen`); without it the
    alias is read here. If another writer moved the alias since, nothing is written and AliasMoved
    says where it points now: the caller decided on a state that no longer holds.
    """
    manifest_sha = _published_manifest_sha(store, model, version)
    canary_record = None
    if canary is not None:
        if weight is None:
            raise ValueError("a canary needs its weight (percent of requests)")
        canary_record = Canary(
            version=canary,
            manifest_sha256=_published_manifest_sha(store, model, canary),
            weight=weight,
        )
    if seen is None:
        seen = read_alias_seen(store, model, alias)
    try:
        return _write_alias(store, model, alias, version, manifest_sha, seen, canary_record)
    except Conflict:
        now = read_alias_seen(store, model, alias).record
        change = version if canary is None else f"{version} + canary {canary} at {weight}%"
        raise AliasMoved(
            f"alias {alias!r} of {model} in {store.uri} was moved by another writer (from "
            f"{describe_alias(seen.record)} to {describe_alias(now, gone='(deleted)')}) while "
            f"this change to {change} ran; it was left as it is. Check `modelfn list` and run "
            f"again if {change} should still replace {describe_alias(now, gone='it')}"
        ) from None


def describe_alias(record: Alias | None, gone: str = "(none)") -> str:
    """What an alias serves, in one phrase: a version, or a version and a canary with its weight."""
    if record is None:
        return gone
    if record.canary is None:
        return record.version
    return f"{record.version} + canary {record.canary.version} at {record.canary.weight}%"


def _published_manifest_sha(store: ArtifactStore, model: str, version: str) -> str:
    """The sha256 of a published version's (valid) manifest, which its alias records."""
    try:
        manifest_bytes = store.get_bytes(file_key(model, version, MANIFEST_FILE))
    except NotFound:
        raise StoreError(f"{model} version {version} is not published in {store.uri}") from None
    parse_manifest(manifest_bytes, source=f"{model}/{version}/{MANIFEST_FILE}")
    return sha256_bytes(manifest_bytes)


def read_alias_seen(store: ArtifactStore, model: str, alias: str) -> AliasSeen:
    """The alias and its tag, for a compare-and-swap by `set_alias`; absent: AliasSeen(None, None)."""
    key = alias_key(model, alias)
    try:
        tagged = store.get_if_changed(key, None)
    except NotFound:
        return AliasSeen(None, None)
    assert tagged is not None  # no tag given: the object always comes back
    return AliasSeen(parse_alias(tagged.data, source=f"{store.uri}/{key}"), tagged.etag)


def _write_alias(
    store: ArtifactStore,
    model: str,
    alias: str,
    version: str,
    manifest_sha: str,
    seen: AliasSeen | None = None,
    canary: Canary | None = None,
) -> Alias:
    """Swap the alias from `seen` (default: as read now) to `version` (and `canary`, if any);
    Conflict if it moved since."""
    record = Alias(
        model=model,
        alias=alias,
        version=version,
        manifest_sha256=manifest_sha,
        updated_at=datetime.now(UTC),
        canary=canary,
    )
    key, data = alias_key(model, alias), record.to_json()
    if not supports_conditional_writes(store):
        store.put_bytes(key, data)
        return record
    if seen is None:
        seen = read_alias_seen(store, model, alias)
    try:
        if seen.etag is None:
            store.put_bytes(key, data, if_none_match=True)
        else:
            store.put_bytes(key, data, if_match=seen.etag)
    except Conflict:
        # A retried request whose first attempt landed is refused too: then our bytes are there.
        try:
            if store.get_bytes(key) == data:
                return record
        except NotFound:
            pass
        raise
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
    store: ArtifactStore,
    model: str,
    ref: str,
    cache_dir: Path,
    pointer: Alias | None = None,
    skip: Collection[str] = (),
) -> tuple[Manifest, Path]:
    """Download and verify `model` at `ref` (an alias or a version) into `cache_dir/<model>/<version>`.

    A folder already in the cache is re-verified and reused; anything that fails verification is
    refused with `IntegrityError` and never left in the cache. `pointer` is alias `ref` as the
    caller already read it (a warm function's conditional GET), so it is not read twice. Files
    named in `skip` are neither fetched nor checked: a reader that never opens them (the zip
    function and the weights, the torch image and the graph) does not wait for their bytes. A
    folder fetched with a skip lacks those files, so a reader that needs them fetches it again.
    """
    version, expected_manifest_sha = _resolve(store, model, ref, pointer)
    target = cache_dir / model / version
    if target.is_dir():
        try:
            manifest = verify_artifact(target, skip=skip)
            if expected_manifest_sha in (None, sha256_bytes((target / MANIFEST_FILE).read_bytes())):
                return manifest, target
        except ArtifactError:
            pass
        shutil.rmtree(target, ignore_errors=True)

    manifest_bytes, manifest = _read_manifest(store, model, version, ref, expected_manifest_sha)

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{version}-"))
    try:
        (staging / MANIFEST_FILE).write_bytes(manifest_bytes)
        _download_files(store, manifest, staging, skip)
        try:
            staging.rename(target)
        except OSError:
            # Another process sharing the cache finished the same version first: use its copy.
            if not target.is_dir():
                raise
            verify_artifact(target, manifest, skip=skip)
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest, target


def _download_files(
    store: ArtifactStore, manifest: Manifest, staging: Path, skip: Collection[str]
) -> None:
    """Every file of the version into `staging`, each checked against the manifest by the store's
    download as its bytes arrive (no second read), FETCH_FILES_AT_ONCE at a time: the small files
    cost a round trip each, which they now spend beside the large one instead of after it. On a
    failure the others finish first (the caller then removes the folder) and the first failure,
    in the manifest's order, is raised."""
    wanted = [name for name in manifest.files if name not in skip]
    names = sorted(wanted, key=lambda name: -manifest.files[name].size)  # largest first
    with ThreadPoolExecutor(FETCH_FILES_AT_ONCE, thread_name_prefix="modelfn-fetch") as pool:
        done = {
            name: pool.submit(
                store.download,
                file_key(manifest.name, manifest.version, name),
                staging / name,
                manifest.files[name],
            )
            for name in names
        }
    for name in wanted:
        done[name].result()


def read_published_manifest(store: ArtifactStore, model: str, ref: str) -> Manifest:
    """The manifest of `model` at `ref` (an alias or a version), checked as a fetch checks it (the
    alias's sha256, the name and version), without downloading the version's files."""
    version, expected_manifest_sha = _resolve(store, model, ref, None)
    return _read_manifest(store, model, version, ref, expected_manifest_sha)[1]


def _resolve(
    store: ArtifactStore, model: str, ref: str, pointer: Alias | None
) -> tuple[str, str | None]:
    """(the version `ref` names, the manifest sha256 its alias records or None for a version)."""
    # Both become path segments of the cache folder: refuse anything that is not a plain name.
    if not is_model_name(model):
        raise ArtifactError(f"{model!r} is not a model name (lower-case words joined by hyphens)")
    if is_version(ref):
        return ref, None
    if not is_alias(ref):
        raise ArtifactError(
            f"{ref!r} is neither a version (YYYYMMDDTHHMMSSZ-xxxxxxxx) nor an alias name"
        )
    if pointer is None:
        pointer = read_alias(store, model, ref)
    elif (pointer.model, pointer.alias) != (model, ref):
        raise ArtifactError(f"alias record {pointer.model}/{pointer.alias} given for {model}/{ref}")
    return pointer.version, pointer.manifest_sha256


def _read_manifest(
    store: ArtifactStore, model: str, version: str, ref: str, expected_manifest_sha: str | None
) -> tuple[bytes, Manifest]:
    """The version's manifest as stored, and parsed; IntegrityError where it is not the one the
    alias recorded or describes another version."""
    manifest_key = file_key(model, version, MANIFEST_FILE)
    try:
        manifest_bytes = store.get_bytes(manifest_key)
    except NotFound:
        if expected_manifest_sha is None:
            raise
        # Publishing writes the manifest before the alias, so this alias was written by hand or
        # the version was deleted under it.
        raise NotFound(
            f"alias {ref!r} of {model!r} points at version {version}, but "
            f"{store.uri}/{manifest_key} does not exist; point the alias at a published version "
            f"(modelfn alias {model} VERSION --alias {ref} --store {store.uri})"
        ) from None
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
    return manifest_bytes, manifest


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
            name, record = leaf[: -len(".json")], parse_alias(store.get_bytes(key))
            entry.aliases[name] = record.version
            if record.canary is not None:
                entry.canaries[name] = record.canary.version
        elif leaf == MANIFEST_FILE and is_version(middle):
            entry.versions.append(middle)
    for entry in models.values():
        entry.versions.sort()
    return [models[name] for name in sorted(models)]
