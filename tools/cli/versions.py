"""`modelfn list`, `alias` and `promote`: the published versions and which one each alias serves."""

from __future__ import annotations

import argparse
import sys

from modelfn.registry import load_registry
from modelfn.store import open_store
from tools.cli.arguments import Subparsers, check_aliases


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
    promoter.set_defaults(func=cmd_promote)


def cmd_list(args: argparse.Namespace) -> int:
    from modelfn.store import list_published

    store = open_store(args.store)
    published = list_published(store)
    if not published:
        print(f"nothing published in {store.uri}")
    for model in published:
        aliases = ", ".join(f"{a} -> {v}" for a, v in sorted(model.aliases.items()))
        print(f"{model.name}: {len(model.versions)} version(s); {aliases or 'no aliases'}")
        for version in model.versions:
            print(f"  {version}")
    return 0


def cmd_alias(args: argparse.Namespace) -> int:
    from modelfn.store import set_alias

    load_registry().get(args.model)
    check_aliases([args.alias])
    store = open_store(args.store)
    record = set_alias(store, args.model, args.alias, args.version)
    print(f"{record.model}: {record.alias} -> {record.version} in {store.uri}")
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
    done = promote(store, entry, args.version, target, source=source)
    if done.copied_from:
        print(f"copied {done.model} {done.version} from {done.copied_from} (sha256 verified)")
    if not done.moved:
        print(
            f"{done.model}: {done.alias} already at {done.version} in {done.store} (stage {done.stage}); nothing to do"
        )
        return 0
    print(
        f"{done.model}: {done.alias} {done.previous or '(none)'} -> {done.version} in {done.store} (stage {done.stage})"
    )
    if done.previous:
        # Name the store when the user named it, so the hint reaches the same one.
        store_flag = f" --store {args.store}" if args.store else ""
        print(
            f"to roll back: modelfn promote {done.model} {done.previous} --stage {done.stage}{store_flag}"
        )
    return 0
