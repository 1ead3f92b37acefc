"""`modelfn package`, `export-edge` and `verify-bundle`: what leaves this machine, a Lambda
deployment or an edge bundle, built and checked before it goes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modelfn.artifact import INT8_ONNX_FILE
from modelfn.registry import load_registry
from modelfn.store import ArtifactStore, open_store
from tools.cli.arguments import Subparsers, add_test_data_arguments, test_data_problem
from tools.paths import EDGE_DIR, PACKAGE_DIR


def register(sub: Subparsers) -> None:
    """Add `package`, `export-edge`, `verify-bundle` to the `modelfn` command."""
    package = sub.add_parser(
        "package",
        help="build a model's deployment as infra/ does and check its size against Lambda's limits",
    )
    package.add_argument(
        "model", help="a model name from models.toml (its serving.runtime picks zip or image)"
    )
    package.add_argument(
        "--arch",
        choices=["x86_64", "arm64"],
        help="Lambda CPU (default: the model's serving.cpu in models.toml)",
    )
    package.add_argument("--out", default=str(PACKAGE_DIR), help="where <model>-<arch>/ is built")
    package.add_argument(
        "--store",
        help="store URI holding the version the function will serve, whose /tmp, memory and "
        "init budget is checked (default: model_artifacts/)",
    )
    package.set_defaults(func=cmd_package)

    edge = sub.add_parser(
        "export-edge", help="turn a published version into a verified, quantized bundle for devices"
    )
    edge.add_argument("model", help="a model name from models.toml")
    which = edge.add_mutually_exclusive_group()
    which.add_argument("--version", help="a published version (default: the alias's)")
    which.add_argument("--alias", default="latest", help="alias to export (default: latest)")
    edge.add_argument(
        "--out", default=str(EDGE_DIR), help=f"where the bundle is written (default: {EDGE_DIR})"
    )
    edge.add_argument(
        "--publish",
        action="store_true",
        help="also publish it under edge/MODEL/VERSION/ in --store",
    )
    edge.add_argument(
        "--store", help="store URI to read (and publish to) (default: model_artifacts/)"
    )
    add_test_data_arguments(edge)
    edge.set_defaults(func=cmd_export_edge)

    verify = sub.add_parser(
        "verify-bundle", help="check an edge bundle's checksums and run its self-test"
    )
    verify.add_argument("path", help="a .edge.tar.gz from modelfn export-edge")
    verify.set_defaults(func=cmd_verify_bundle)


def cmd_package(args: argparse.Namespace) -> int:
    """Build MODEL's deployment as infra/ does, print its unzipped size, fail above Lambda's limit."""
    from infra.deployment_package import PackageTooLarge, build_package, describe, mib, size_verdict

    try:
        package = build_package(
            args.model, registry=load_registry(), architecture=args.arch, out_dir=Path(args.out)
        )
    except (
        RuntimeError
    ) as exc:  # pip or the bytecode compiler failed; the message says what to change
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{describe(package)}: {package.folder}")
    width = max(len(part.name) for part in package.parts)
    for part in package.parts:
        print(f"  {part.name:<{width}} {mib(part.size):>10}  {part.path}")
    print(f"  {'total':<{width}} {mib(package.size):>10}  ({package.measures})")
    try:
        warning = size_verdict(
            package.size, limit=package.limit, warning=package.warning, what=describe(package)
        )
    except PackageTooLarge as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"within Lambda's {mib(package.limit)} limit")
    return print_budget(args.model, open_store(args.store))


def print_budget(model: str, store: ArtifactStore) -> int:
    """The budget of the version `model`'s serving alias names in `store` (modelfn/budget.py)
    against its serving settings; 1 where one does not fit, 0 otherwise (none published: 0)."""
    from modelfn.budget import version_budget
    from modelfn.store import NotFound, read_published_manifest

    serving = load_registry().get(model).serving
    alias = serving.alias
    try:
        manifest = read_published_manifest(store, model, alias)
    except NotFound:
        print(
            f"budget: {model} has no version under alias {alias!r} in {store.uri}; its /tmp, "
            "memory and init are checked here once one is published (and at modelfn import)"
        )
        return 0
    if serving.runtime != "onnxruntime":
        print(f"budget: not computed for runtime {serving.runtime} (onnxruntime sessions only)")
        return 0
    if serving.precision == "int8" and INT8_ONNX_FILE not in manifest.files:
        print(
            f"error: {model} {manifest.version} (alias {alias} in {store.uri}) has no "
            f"{INT8_ONNX_FILE}, and [models.{model}.serving] precision is int8: its function "
            f"would answer 503; publish one with `modelfn quantize {model}`",
            file=sys.stderr,
        )
        return 1
    sizes = {name: entry.size for name, entry in manifest.files.items()}
    budget = version_budget(sizes, serving)
    print(
        f"budget of {model} {manifest.version} (alias {alias} in {store.uri}) against "
        f"[models.{model}.serving]: {budget.summary()}"
    )
    for finding in budget.findings:
        level = "error" if finding.level == "refused" else "warning"
        print(f"{level}: {finding.message}", file=sys.stderr)
    return 1 if budget.refusals else 0


def cmd_export_edge(args: argparse.Namespace) -> int:
    """Fetch MODEL's version, build its edge bundle, print the parity report, optionally publish."""
    from edge.export import export_bundle, latency_record, parity_report
    from edge.publish import publish_bundle
    from tools.edge_test_data import DATA_ERRORS, version_with_test_data

    entry = load_registry().get(args.model)
    problem = test_data_problem(entry, args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    store = open_store(args.store)
    try:
        with version_with_test_data(
            store,
            entry,
            args.version or args.alias,
            args.data,
            text_column=args.text_column,
            label_column=args.label_column,
            prefix="modelfn-edge-",
        ) as (_, folder, data):
            result = export_bundle(folder, Path(args.out), entry, data)
    except DATA_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    latency = result.path.with_name(result.path.name.replace(".edge.tar.gz", ".latency.json"))
    latency.write_bytes(latency_record(result))
    print(parity_report(result))
    if args.publish:
        record = publish_bundle(store, result.path)
        print(
            f"published {record.file} (sha256 {record.sha256}) to {store.uri}/edge/{record.model}/{record.version}/"
        )
    return 0


def cmd_verify_bundle(args: argparse.Namespace) -> int:
    from edge.bundle import verify_bundle

    manifest, report = verify_bundle(Path(args.path))
    graphs = "fp32 + int8" if manifest.graphs.int8 else "fp32 only"
    print(f"{args.path}: {manifest.model} {manifest.version}, checksums match ({graphs})")
    print(report)
    return 0
