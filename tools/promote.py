"""Promote a published version to a stage: move the alias the stage's functions serve.

A deployed function re-reads its alias within `MODELFN_ALIAS_TTL_S` (60 s by default), so moving
the alias in the stage's store is the whole promotion: no redeploy. Rollback is promoting the
version the alias pointed at before. `--canary PERCENT` moves only that share of requests to the
version, beside the stable one the alias keeps (docs/serving.md, "Canary rollouts"); promoting
either version without it ends the canary (the stable: a rollback; the canary: its completion). Each stage has its own bucket, so a version trained into
dev's store is first copied into the target store (fetched and sha256-verified from the source,
published with no alias), and only then is the stage's alias moved.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import BaseModel

from modelfn.artifact import MANIFEST_FILE, ArtifactError, file_key, is_version, parse_manifest
from modelfn.budget import canary_refusal
from modelfn.registry import ModelEntry
from modelfn.stages import StageTarget
from modelfn.store import (
    ArtifactStore,
    NotFound,
    StoreError,
    fetch_artifact,
    publish_artifact,
    set_alias,
)
from modelfn.store.transfer import AliasSeen, describe_alias, read_alias_seen

# The CloudFormation output infra/ gives every stage's stack: s3://<artifact bucket>.
STORE_OUTPUT = "StoreUri"


class Promotion(BaseModel):
    """What `promote` did, for the CLI to report."""

    model: str
    stage: str
    alias: str
    store: str  # the target store's URI
    version: str  # the stable version the alias serves now
    previous: str | None  # the version the alias pointed at before; None: the alias is new
    copied_from: str | None = None  # the source store's URI when the version was copied
    canary: str | None = None  # the canary version the alias names now, and its percent
    weight: int | None = None
    before: str = "(none)"  # what the alias served before, in words (a canary too)
    moved: bool = True  # False: the alias already served this; nothing was written


class CanaryRefused(ArtifactError):
    """A canary this alias cannot take: no stable version, the same version, or no memory for two."""


def move_alias(
    store: ArtifactStore,
    entry: ModelEntry,
    alias: str,
    version: str,
    *,
    canary: int | None = None,
    seen: AliasSeen | None = None,
) -> tuple[AliasSeen, bool]:
    """Serve published `version` under `alias`: whole, or with `canary` (percent) beside the
    version the alias serves now, which stays its stable one. A compare-and-swap against `seen`
    (default: read here); returns it and whether anything was written (not when already so)."""
    model = entry.name
    seen = seen or read_alias_seen(store, model, alias)
    current = seen.record
    if canary is None:
        stable, canary_version = version, None
    else:
        if current is None:
            raise CanaryRefused(
                f"alias {alias!r} of {model} serves no version yet, so there is no stable version "
                f"to keep beside a canary; point it at a version first (without --canary)"
            )
        if current.version == version:
            raise CanaryRefused(
                f"{version} is the stable version alias {alias!r} of {model} serves; a canary is "
                "another version"
            )
        stable, canary_version = current.version, version
        serving = entry.serving
        refusal = canary_refusal(
            _file_sizes(store, model, stable),
            _file_sizes(store, model, version),
            serving.precision if serving.runtime == "onnxruntime" else "fp32",
            serving.memory_mb,
        )
        if refusal is not None:
            raise CanaryRefused(
                f"{model}'s function cannot hold {stable} and canary {version} at once: {refusal}"
            )
    now_canary = current.canary if current else None
    if (
        current is not None
        and current.version == stable
        and (now_canary.version if now_canary else None) == canary_version
        and (now_canary.weight if now_canary else None) == canary
    ):
        return seen, False
    set_alias(store, model, alias, stable, seen=seen, canary=canary_version, weight=canary)
    return seen, True


def _file_sizes(store: ArtifactStore, model: str, version: str) -> dict[str, int]:
    key = file_key(model, version, MANIFEST_FILE)
    try:
        manifest = parse_manifest(store.get_bytes(key), source=f"{store.uri}/{key}")
    except NotFound:
        raise StoreError(f"{model} version {version} is not published in {store.uri}") from None
    return {name: f.size for name, f in manifest.files.items()}


def stage_store_uri(target: StageTarget, store: str | None = None) -> str:
    """The stage's store: `store`, else its stack's `StoreUri` output.

    Never $MODELFN_STORE_URI: it usually names the dev or local store, and a promotion there
    would move an alias that no function of the stage serves.
    """
    return store or stack_store_uri(target)


def stack_store_uri(target: StageTarget) -> str:
    """The `StoreUri` output of the stage's deployed CloudFormation stack."""
    # boto3 only here: --store never pays for it.
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    fix = (
        "pass --store s3://BUCKET, or deploy the stage first "
        f"(npx cdk deploy -c stage={target.stage})"
    )
    try:
        stacks = boto3.client("cloudformation").describe_stacks(StackName=target.stack_name)[
            "Stacks"
        ]
    except (BotoCoreError, ClientError) as exc:
        raise StoreError(
            f"cannot look up the store of stage {target.stage!r} (stack {target.stack_name}): {exc}; {fix}"
        ) from exc
    outputs = {
        o["OutputKey"]: o["OutputValue"] for stack in stacks for o in stack.get("Outputs", [])
    }
    if STORE_OUTPUT not in outputs:
        raise StoreError(
            f"stack {target.stack_name} of stage {target.stage!r} has no {STORE_OUTPUT} output; {fix}"
        )
    return str(outputs[STORE_OUTPUT])


def promote(
    store: ArtifactStore,
    entry: ModelEntry,
    version: str,
    target: StageTarget,
    *,
    source: ArtifactStore | None = None,
    canary: int | None = None,
) -> Promotion:
    """Point `target`'s alias for `entry` at `version` in `store`, copying it from `source` if absent;
    with `canary`, send that percent of requests to `version` and the rest to the stable version.

    An alias already at `version` is left as it is (no write, so warm functions see no change).
    The move is a compare-and-swap against the alias as read here, before any copy: if another
    promote or rollback moved it meanwhile, this one raises AliasMoved and writes nothing, so
    neither is silently lost and the reported `previous` (the rollback target) is what was replaced.

    Example::

        promote(open_store("s3://prod-bucket"), load_registry().get("cifar10-cnn"),
                "20261129T162753Z-7b58cb9a", stage_target("prod"), source=open_store("s3://dev-bucket"))
    """
    model = entry.name
    if not is_version(version):
        raise ArtifactError(
            f"{version!r} is not a version (YYYYMMDDTHHMMSSZ-xxxxxxxx; see modelfn list)"
        )
    alias = target.alias_for(entry)
    seen = read_alias_seen(store, model, alias)
    previous = seen.version

    copied_from = None
    if not store.exists(file_key(model, version, MANIFEST_FILE)):
        if source is None:
            raise StoreError(
                f"{model} version {version} is not published in {store.uri}; copy it from the store "
                f"it was trained into with --from SOURCE_URI, or publish it there first "
                f"(modelfn train {model} --publish {store.uri})"
            )
        _copy_version(source, store, model, version)
        copied_from = source.uri

    _, moved = move_alias(store, entry, alias, version, canary=canary, seen=seen)
    return Promotion(
        model=model,
        stage=target.stage,
        alias=alias,
        store=store.uri,
        version=version if canary is None else str(previous),
        previous=previous,
        copied_from=copied_from,
        canary=version if canary is not None else None,
        weight=canary,
        before=describe_alias(seen.record),
        moved=moved,
    )


def _copy_version(source: ArtifactStore, store: ArtifactStore, model: str, version: str) -> None:
    """Fetch `version` from `source` (every file sha256-checked) and publish it to `store` with no alias."""
    with tempfile.TemporaryDirectory(prefix="modelfn-promote-") as cache:
        try:
            _, folder = fetch_artifact(source, model, version, Path(cache))
        except NotFound:
            raise StoreError(
                f"{model} version {version} is published neither in {store.uri} nor in {source.uri} "
                "(--from); see `modelfn list --store URI` for the versions each holds"
            ) from None
        # No alias: the copy must not move `latest` (or any other alias) in the target store.
        publish_artifact(store, folder, aliases=())
