"""`modelfn quantize`: publish a new version of a published one with its int8 graph, for a function
at `serving.precision = "int8"` (tools/int8_version.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modelfn.registry import load_registry
from modelfn.store import DEFAULT_LOCAL_STORE, open_store
from tools.cli.arguments import (
    Subparsers,
    add_test_data_arguments,
    check_aliases,
    test_data_problem,
)
from tools.paths import BUILD_DIR


def register(sub: Subparsers) -> None:
    """Add `quantize` to the `modelfn` command."""
    cmd = sub.add_parser(
        "quantize",
        help="derive an int8 version from a published one: quantize, score against fp32 under "
        "the model's threshold, publish",
        description="Fetches a published version, quantizes its graph as export-edge does, "
        "scores fp32 against int8 on the test data under the [models.MODEL.edge] threshold and, "
        "within it, publishes a new version: the same files plus model.int8.onnx, its manifest "
        "recording the figures and the source version. Past the threshold nothing is published.",
    )
    cmd.add_argument("model", help="a model name from models.toml")
    cmd.add_argument(
        "--version", help="the published version to quantize (default: the serving alias's)"
    )
    cmd.add_argument(
        "--store",
        help=f"store URI to read and publish to: s3://BUCKET[/PREFIX] or a folder (default: "
        f"{DEFAULT_LOCAL_STORE})",
    )
    cmd.add_argument(
        "--alias",
        action="append",
        default=None,
        help="alias(es) to point at the new version (default: latest)",
    )
    cmd.add_argument("--out", default=str(BUILD_DIR), help="where the new version is built")
    add_test_data_arguments(cmd)
    cmd.set_defaults(func=cmd_quantize)


def cmd_quantize(args: argparse.Namespace) -> int:
    from modelfn.store import publish_artifact
    from tools.edge_test_data import DATA_ERRORS, version_with_test_data
    from tools.int8_version import derive_int8_version, describe

    entry = load_registry().get(args.model)
    problem = test_data_problem(entry, args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    store = open_store(args.store)
    check_aliases(args.alias)
    try:
        with version_with_test_data(
            store,
            entry,
            args.version or entry.serving.alias,
            args.data,
            text_column=args.text_column,
            label_column=args.label_column,
            prefix="modelfn-quantize-",
        ) as (source_manifest, folder, data):
            derived = derive_int8_version(folder, entry, data, Path(args.out))
    except DATA_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    manifest = publish_artifact(store, derived, aliases=tuple(args.alias))
    print(describe(manifest))
    print(
        f"published {manifest.name} {manifest.version} (version {source_manifest.version} and "
        f"model.int8.onnx) to "
        f"{store.uri} (aliases: {', '.join(args.alias)})"
    )
    if entry.serving.precision != "int8":
        print(
            f"note: [models.{args.model}.serving] precision is {entry.serving.precision}, so its "
            'function serves model.onnx still; set precision = "int8" to serve the int8 graph'
        )
    return 0
