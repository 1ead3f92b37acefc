"""The `modelfn` command: train, tune, alias, promote, list, serve, evaluate, demo, package, export-edge,
verify-bundle.

Heavy imports (torch, moto, boto3) happen inside the sub-command that needs them, so
`modelfn --help` and `modelfn list` start fast.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from modelfn.artifact import ArtifactError, is_alias, is_version
from modelfn.registry import REPO_ROOT, RegistryError, UnknownModelError, load_registry
from modelfn.store import DEFAULT_LOCAL_STORE, StoreError, open_store

BUILD_DIR = REPO_ROOT / "build" / "artifacts"
SERVE_PORT = 8080  # `modelfn serve`'s gateway (`make serve`); the demo points at it when done
RUNS_DIR = REPO_ROOT / "build" / "runs"  # a folder per training run: its epoch checkpoints
PACKAGE_DIR = (
    REPO_ROOT / "build" / "package"
)  # `modelfn package` output, a folder per model and CPU
EDGE_DIR = (
    REPO_ROOT / "build" / "edge"
)  # `modelfn export-edge` output: one .edge.tar.gz per version


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text}")
    return value


def cmd_train(args: argparse.Namespace) -> int:
    from modelfn.store import publish_artifact
    from training.errors import TrainingError
    from training.pipeline import train_model

    entry = load_registry().get(args.model)
    if args.nproc > 1:
        return _torchrun(args.argv, args.nproc)
    # Fail on a bad store URI or alias before spending minutes training.
    store = open_store(args.publish)
    _check_aliases(args.alias)
    # A live bar where a person watches (stderr is a terminal); plain lines for logs and CI.
    progress = not args.quiet and sys.stderr.isatty()
    if progress:
        from tqdm import tqdm

        log = tqdm.write
    else:
        log = print
    if args.resume:
        run_dir = Path(args.resume)
    else:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        run_dir = (
            Path(args.runs)
            / entry.name
            / f"{stamp}-{args.preset or entry.training.preset}-seed{args.seed}"
        )
    try:
        folder = train_model(
            entry.name,
            data_dir=args.data,
            preset=args.preset,
            epochs=args.epochs,
            out_dir=Path(args.out),
            seed=args.seed,
            log=log,
            progress=progress,
            run_dir=run_dir,
            resume=bool(args.resume),
        )
    except (TrainingError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if folder is None:
        return 0  # a torchrun rank other than 0: rank 0 writes and publishes
    manifest = publish_artifact(store, folder, aliases=tuple(args.alias))
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(manifest.metrics.items()))
    for headline in ("accuracy", "test_perplexity"):
        if headline in manifest.metrics:
            print(f"{headline.replace('_', ' ')}: {manifest.metrics[headline]:.4f}")
    print(f"metrics: {metrics}")
    print(
        f"published {manifest.name} {manifest.version} to {store.uri} (aliases: {', '.join(args.alias)})"
    )
    return 0


def _torchrun(argv: list[str], nproc: int) -> int:
    """Run this very `modelfn train` command under torchrun with `nproc` processes on this machine.

    torchrun sets each rank's RANK/WORLD_SIZE; training/distributed.py joins them (gloo on the
    CPU, nccl on GPUs). Across machines, run torchrun yourself: docs/training.md.
    """
    import os
    import subprocess

    if os.environ.get("WORLD_SIZE"):
        raise ArtifactError(
            "--nproc inside a torchrun rank: run either torchrun or --nproc, not both"
        )
    # The same arguments minus --nproc (as "--nproc K" or "--nproc=K").
    rest = [
        a
        for i, a in enumerate(argv)
        if not a.startswith("--nproc") and (i == 0 or argv[i - 1] != "--nproc")
    ]
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
        "-m", "tools", *rest,
    ]  # fmt: skip
    return subprocess.run(command, check=False).returncode


def _check_aliases(aliases: list[str]) -> None:
    for alias in aliases:
        if not is_alias(alias):
            raise ArtifactError(
                f"alias {alias!r} is not valid: lower-case letters, digits and single hyphens, "
                "starting with a letter (e.g. latest, prod, canary-2)"
            )


def cmd_alias(args: argparse.Namespace) -> int:
    from modelfn.store import set_alias

    load_registry().get(args.model)
    _check_aliases([args.alias])
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


def cmd_serve(args: argparse.Namespace) -> int:
    import signal
    import threading

    from tools.local.auth import local_authorizer
    from tools.local.deployment import local_deployment
    from tools.local.playground import page_url, playground_url

    registry = load_registry()
    source = open_store(args.store)
    models = args.models.split(",") if args.models else None
    authorizer, auth_lines = local_authorizer(args.auth)
    with local_deployment(
        registry,
        source,
        port=args.port,
        s3_endpoint=args.s3_endpoint,
        models=models,
        authorizer=authorizer,
    ) as deployment:
        print(
            f"local S3: {deployment.s3_endpoint} ({deployment.store_uri}, {deployment.seeded_objects} objects)"
        )
        for name, fn in deployment.functions.items():
            print(f"function {name}: cold start {fn.init_ms:.0f} ms, log {fn.log_path}")
            print(f"  POST {deployment.url}/models/{name}/predict")
            print(f"  POST {deployment.url}/v2/models/{name}/infer")
            print(f"  page {page_url(deployment.url, name)}")
        print(f"API docs: {deployment.url}/docs (OpenAPI: {deployment.url}/openapi.json)")
        print(
            f"playground: {playground_url(deployment.url)} (each model's page, form and model card)"
        )
        if authorizer is not None:
            print("  (its pages are routes like the API's, so they too need a signed request)")
        print(
            "\n".join(auth_lines)
            or "auth none: every route open (the deployed API uses cdk.json's modelfn:auth)"
        )
        print(f"gateway listening on {deployment.url} (Ctrl-C to stop)", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    print("stopped")
    return 0


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


def cmd_tune(args: argparse.Namespace) -> int:
    from training.errors import TrainingError
    from training.tune import tune

    load_registry().get(args.model)
    try:
        tune(
            args.model,
            trials=args.trials,
            timeout_min=args.timeout,
            storage=Path(args.storage) if args.storage else None,
            data_dir=args.data,
            base=args.base,
            seed=args.seed,
            write_preset=args.write_preset,
        )
    except (TrainingError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from tools.evaluate import served_metrics

    load_registry().get(args.model)
    if args.version and not is_version(args.version):
        raise ArtifactError(f"--version {args.version!r} is not a version (see modelfn list)")
    store = open_store(args.store)
    which = args.version or args.alias
    figures = served_metrics(args.model, store, alias=which, data=args.data)
    print(f"{args.model} ({which}), test split through the Lambda handler:")
    print(f"  {'metric':<26} {'recorded':>12} {'recomputed':>12}  relative difference")
    worst = 0.0
    for metric, (trained, served) in figures.items():
        difference = abs(served - trained) / max(abs(trained), 1e-12)
        worst = max(worst, difference)
        print(f"  {metric:<26} {trained:>12.6g} {served:>12.6g}  {difference:.1e}")
    # float32 graphs and a different summation order: agreement to 1e-4 is "the same".
    print("served equals trained" if worst <= 1e-4 else f"MISMATCH: up to {worst:.1e} relative")
    return 0 if worst <= 1e-4 else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from tools.demo import run_demo

    return run_demo(
        images=args.images,
        reviews=args.reviews,
        sentences=args.sentences,
        data=args.data,
        port=args.port,
        epochs=args.epochs,
        store_uri=args.store,
    )


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
    return 0


def cmd_export_edge(args: argparse.Namespace) -> int:
    """Fetch MODEL's version, build its edge bundle, print the parity report, optionally publish."""
    import tempfile

    from edge.export import export_bundle, latency_record, parity_report
    from edge.publish import publish_bundle
    from modelfn.store import fetch_artifact
    from training.data.location import data_root_for

    entry = load_registry().get(args.model)
    if args.version and not is_version(args.version):
        raise ArtifactError(f"--version {args.version!r} is not a version (see modelfn list)")
    store = open_store(args.store)
    try:
        data_root = data_root_for(args.data, entry.data_subdir)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="modelfn-edge-") as cache:
        _, folder = fetch_artifact(store, args.model, args.version or args.alias, Path(cache))
        result = export_bundle(folder, Path(args.out), entry, data_root)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelfn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train, evaluate, export, verify and publish a model")
    train.add_argument("model", help="a model name from models.toml")
    train.add_argument("--data", help="data root (default: $MODELFN_DATA_DIR, then ../shared/data)")
    train.add_argument("--epochs", type=_positive_int, help="override the preset's epoch count")
    train.add_argument(
        "--preset", help="training preset from the model's config (e.g. smoke, full)"
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--publish",
        metavar="STORE_URI",
        help=f"s3://BUCKET[/PREFIX] or a folder (default: {DEFAULT_LOCAL_STORE})",
    )
    train.add_argument(
        "--alias",
        action="append",
        default=None,
        help="alias(es) to point at the new version (default: latest)",
    )
    train.add_argument("--out", default=str(BUILD_DIR), help="where the artifact folder is built")
    train.add_argument(
        "--quiet", action="store_true", help="no live progress bar (plain lines, for logs)"
    )
    train.add_argument("--runs", default=str(RUNS_DIR), help="where runs keep their checkpoints")
    train.add_argument(
        "--nproc",
        type=_positive_int,
        default=1,
        help="data-parallel processes on this machine (torchrun + DDP; default 1)",
    )
    train.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run from its checkpoint folder (build/runs/MODEL/...)",
    )
    train.set_defaults(func=cmd_train)

    serve = sub.add_parser(
        "serve", help="serve published models locally behind an HTTP API gateway"
    )
    serve.add_argument("--port", type=int, default=SERVE_PORT)
    serve.add_argument(
        "--store", help="store to seed the local S3 from (default: model_artifacts/)"
    )
    serve.add_argument(
        "--s3-endpoint", help="use this S3 endpoint instead of starting a moto server"
    )
    serve.add_argument("--models", help="comma-separated model names (default: all published)")
    serve.add_argument(
        "--auth", choices=("iam", "jwt", "none"), default="none",  # tools.local.auth.AUTH_MODES
        help="authorize every route as the deployed API can: iam (SigV4, a key pair printed at start "
        "or MODELFN_GATEWAY_ACCESS_KEY_ID/_SECRET_ACCESS_KEY), jwt (RS256 against a local key; a "
        "token is printed), none (default)",
    )  # fmt: skip
    serve.set_defaults(func=cmd_serve)

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

    lister = sub.add_parser("list", help="list published models, versions and aliases")
    lister.add_argument("--store", help="store URI (default: model_artifacts/)")
    lister.set_defaults(func=cmd_list)

    tuner = sub.add_parser(
        "tune", help="search hyper-parameters with Optuna on held-out training data"
    )
    tuner.add_argument("model", help="a model name from models.toml")
    tuner.add_argument(
        "--trials", type=_positive_int, default=20, help="trials to run (default 20)"
    )
    tuner.add_argument("--timeout", type=float, help="stop starting trials after this many minutes")
    tuner.add_argument("--base", help="preset the trials start from (default: [search] base)")
    tuner.add_argument("--storage", help="SQLite file of the study (default: build/tune/MODEL.db)")
    tuner.add_argument("--data", help="data root (default: $MODELFN_DATA_DIR, then ../shared/data)")
    tuner.add_argument("--seed", type=int, default=0, help="seeds the sampler and every trial")
    tuner.add_argument("--write-preset", metavar="NAME", help="add the best trial as preset [NAME]")
    tuner.set_defaults(func=cmd_tune)

    evaluate = sub.add_parser(
        "evaluate", help="recompute a published version's test figures through the Lambda handler"
    )
    evaluate.add_argument("model", help="a model name from models.toml")
    evaluate.add_argument("--version", help="a published version (default: the alias's)")
    evaluate.add_argument("--alias", default="latest", help="alias to evaluate (default: latest)")
    evaluate.add_argument("--store", help="store URI (default: model_artifacts/)")
    evaluate.add_argument(
        "--data", help="data root (default: $MODELFN_DATA_DIR, then ../shared/data)"
    )
    evaluate.set_defaults(func=cmd_evaluate)

    demo = sub.add_parser(
        "demo", help="train the three models (smoke), serve them locally, query them"
    )
    demo.add_argument(
        "--images", type=_positive_int, default=12, help="CIFAR-10 test images to send"
    )
    demo.add_argument("--reviews", type=_positive_int, default=8, help="IMDB test reviews to send")
    demo.add_argument(
        "--sentences", type=_positive_int, default=64, help="PTB test sentences to score"
    )
    demo.add_argument("--data", help="data root (default: $MODELFN_DATA_DIR, then ../shared/data)")
    demo.add_argument("--port", type=int, default=0, help="gateway port (default: any free port)")
    demo.add_argument(
        "--epochs", type=_positive_int, help="override the smoke presets' epoch counts"
    )
    demo.add_argument("--store", help="local store to publish into (default: model_artifacts/)")
    demo.set_defaults(func=cmd_demo)

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
    edge.add_argument(
        "--data",
        help="data root for the parity report (default: $MODELFN_DATA_DIR, then ../shared/data)",
    )
    edge.set_defaults(func=cmd_export_edge)

    verify = sub.add_parser(
        "verify-bundle", help="check an edge bundle's checksums and run its self-test"
    )
    verify.add_argument("path", help="a .edge.tar.gz from modelfn export-edge")
    verify.set_defaults(func=cmd_verify_bundle)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # `train --nproc` runs the same command again under torchrun
    if getattr(args, "alias", "unset") is None:
        args.alias = ["latest"]
    # Mistakes a user can fix (names, stores, artifacts) print one line, not a traceback.
    try:
        return int(args.func(args))
    except (RegistryError, UnknownModelError, StoreError, ArtifactError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
