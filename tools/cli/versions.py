"""`modelfn list`, `alias`, `promote` and `rollout`: the published versions, which one each alias
serves, and how a canary rollout between two of them is going."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modelfn.registry import ModelEntry, load_registry
from modelfn.store import open_store
from tools.cli.arguments import Subparsers, canary_percent, check_aliases
from tools.paths import LOG_DIR

CANARY_HELP = (
    "send this percent of requests (1-99) to VERSION and the rest to the version the alias "
    "serves now, until promote or rollback ends it (docs/serving.md, Canary rollouts)"
)


def register(sub: Subparsers) -> None:
    """Add `list`, `alias`, `promote` to the `modelfn` command."""
    lister = sub.add_parser("list", help="list published models, versions and aliases")
    lister.add_argument("--store", help="store URI (default: model_artifacts/)")
    lister.set_defaults(func=cmd_list)

    alias = sub.add_parser("alias", help="point an alias (e.g. prod) at a published version")
    alias.add_argument("model", help="a model name from models.toml")
    alias.add_argument("version", help="a published version (see modelfn list)")
    alias.add_argument("--alias", default="latest", help="the alias to move (default: latest)")
    alias.add_argument("--store", help="store URI (default: model_artifacts/)")
    alias.add_argument("--canary", type=canary_percent, metavar="PERCENT", help=CANARY_HELP)
    alias.set_defaults(func=cmd_alias)

    promoter = sub.add_parser(
        "promote",
        help="serve a published version on a stage (dev, staging, prod) by moving its alias",
    )
    promoter.add_argument("model", help="a model name from models.toml")
    promoter.add_argument(
        "version", help="a published version (see modelfn list); an older one rolls back"
    )
    promoter.add_argument("--stage", required=True, help="a stage from cdk.json's modelfn:stages")
    promoter.add_argument(
        "--store", help="the stage's store URI (default: the StoreUri output of the stage's stack)"
    )
    promoter.add_argument(
        "--from",
        dest="source",
        metavar="SOURCE_URI",
        help="store to copy the version from when the stage's lacks it",
    )
    promoter.add_argument("--canary", type=canary_percent, metavar="PERCENT", help=CANARY_HELP)
    promoter.set_defaults(func=cmd_promote)

    rollout = sub.add_parser(
        "rollout",
        help="a canary rollout's requests, errors and latency per version; --check rolls it "
        "back or promotes it by the model's [canary] limits",
    )
    rollout.add_argument("model", help="a model name from models.toml")
    rollout.add_argument(
        # Not `alias`: the `modelfn` command fills an unset `alias` with train's ["latest"].
        "--alias",
        dest="alias_name",
        help="the alias (default: the model's serving.alias)",
    )
    rollout.add_argument(
        "--stage",
        help="a deployed stage from cdk.json: its store (the stack's StoreUri), its alias, and "
        "the figures from CloudWatch instead of the local logs",
    )
    rollout.add_argument(
        "--store",
        help="store URI (default: model_artifacts/, or the stage's; `modelfn serve`'s functions "
        "follow s3://modelfn-artifacts at the local S3 endpoint it prints)",
    )
    rollout.add_argument(
        "--logs",
        type=Path,
        default=LOG_DIR,
        help="folder of the functions' logs, <model>.log (default: build/logs, where "
        "`modelfn serve` writes them)",
    )
    rollout.add_argument(
        "--check",
        action="store_true",
        help="decide as the stage's checker does: roll the canary back if it broke a limit, "
        "promote it once its bake time passed clean, else hold",
    )
    rollout.set_defaults(func=cmd_rollout)


def cmd_list(args: argparse.Namespace) -> int:
    from modelfn.store import list_published

    store = open_store(args.store)
    published = list_published(store)
    if not published:
        print(f"nothing published in {store.uri}")
    for model in published:
        aliases = ", ".join(
            f"{a} -> {v}" + (f" + canary {model.canaries[a]}" if a in model.canaries else "")
            for a, v in sorted(model.aliases.items())
        )
        print(f"{model.name}: {len(model.versions)} version(s); {aliases or 'no aliases'}")
        for version in model.versions:
            print(f"  {version}")
    return 0


def cmd_alias(args: argparse.Namespace) -> int:
    from modelfn.store.transfer import describe_alias, read_alias
    from tools.promote import move_alias

    entry = load_registry().get(args.model)
    check_aliases([args.alias])
    store = open_store(args.store)
    seen, moved = move_alias(store, entry, args.alias, args.version, canary=args.canary)
    now = describe_alias(read_alias(store, args.model, args.alias))
    if not moved:
        print(f"{args.model}: {args.alias} already at {now} in {store.uri}; nothing to do")
        return 0
    print(f"{args.model}: {args.alias} {describe_alias(seen.record)} -> {now} in {store.uri}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    """Move the alias STAGE's functions serve to VERSION in STAGE's store (copying it --from first)."""
    from modelfn.stages import StageError, stage_target
    from tools.promote import promote, stage_store_uri

    entry = load_registry().get(args.model)
    try:
        target = stage_target(args.stage)
    except StageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    store = open_store(stage_store_uri(target, args.store))
    source = open_store(args.source) if args.source else None
    done = promote(store, entry, args.version, target, source=source, canary=args.canary)
    if done.copied_from:
        print(f"copied {done.model} {done.version} from {done.copied_from} (sha256 verified)")
    now = (
        done.version
        if done.canary is None
        else f"{done.version} + canary {done.canary} at {done.weight}%"
    )
    if not done.moved:
        print(
            f"{done.model}: {done.alias} already at {now} in {done.store} (stage {done.stage}); nothing to do"
        )
        return 0
    print(f"{done.model}: {done.alias} {done.before} -> {now} in {done.store} (stage {done.stage})")
    # Name the store when the user named it, so the hint reaches the same one.
    store_flag = f" --store {args.store}" if args.store else ""
    if done.canary is not None:
        print(
            f"watch it: modelfn rollout {done.model} --stage {done.stage}{store_flag}\n"
            f"complete it: modelfn promote {done.model} {done.canary} --stage {done.stage}{store_flag}\n"
            f"roll it back: modelfn promote {done.model} {done.version} --stage {done.stage}{store_flag}"
        )
    elif done.previous and done.previous != done.version:
        print(
            f"to roll back: modelfn promote {done.model} {done.previous} --stage {done.stage}{store_flag}"
        )
    return 0


def cmd_rollout(args: argparse.Namespace) -> int:
    """Print the alias's per-version figures from the local function logs; --check decides."""
    from tools.rollout import DECISIONS_LOG, check, read_rollout, report

    entry = load_registry().get(args.model)
    if args.stage:
        return _stage_rollout(args, entry)
    alias = args.alias_name or entry.serving.alias
    check_aliases([alias])
    store = open_store(args.store)
    log_path = args.logs / f"{entry.name}.log"
    print("\n".join(report(read_rollout(store, entry, alias, log_path))))
    if not args.check:
        return 0
    decision = check(store, entry, alias, log_path, decisions_log=args.logs / DECISIONS_LOG)
    print(f"{decision.action}: {decision.reason}")
    return 0


def _stage_rollout(args: argparse.Namespace, entry: ModelEntry) -> int:
    """`rollout --stage`: the figures from CloudWatch, and --check as the stage's checker does
    (without the alarm topic: the decision is printed)."""
    from datetime import UTC, datetime

    from functions.canary_checker import check_stage, cloudwatch_stats
    from modelfn.registry import service_name
    from modelfn.stages import StageError, stage_target
    from modelfn.store import NotFound
    from modelfn.store.transfer import read_alias_seen
    from tools.promote import stage_store_uri
    from tools.rollout import Rollout, cloudwatch_client, report

    try:
        target = stage_target(args.stage)
    except StageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    uri = stage_store_uri(target, args.store)
    store, alias, now = open_store(uri), target.alias_for(entry), datetime.now(UTC)
    service = service_name(entry.name)
    seen = read_alias_seen(store, entry.name, alias)
    if seen.record is None:
        raise NotFound(f"model {entry.name!r} has no alias {alias!r} in {store.uri}")
    cloudwatch = cloudwatch_client()
    print("\n".join(report(Rollout(seen, cloudwatch_stats(cloudwatch, service, seen.record, now)))))
    if not args.check:
        return 0
    spec = {"alias": alias, "service": service, "limits": entry.canary.model_dump()}
    lines = check_stage(uri, {entry.name: spec}, cloudwatch, None, None, now)
    if not lines:
        print("error: the check failed; its trace is logged above", file=sys.stderr)
        return 1
    print(f"{lines[0]['action']}: {lines[0]['reason']}")
    return 0
