"""`modelfn train` (with `--nproc`, under torchrun) and `modelfn tune`: train on this machine."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from modelfn.artifact import ArtifactError
from modelfn.registry import load_registry
from modelfn.store import DEFAULT_LOCAL_STORE, open_store
from tools.cli.arguments import DATA_HELP, Subparsers, check_aliases, positive_int
from tools.paths import BUILD_DIR, RUNS_DIR


def register(sub: Subparsers) -> None:
    """Add `train`, `tune` to the `modelfn` command."""
    train = sub.add_parser("train", help="train, evaluate, export, verify and publish a model")
    train.add_argument("model", help="a model name from models.toml")
    train.add_argument("--data", help=DATA_HELP)
    train.add_argument("--epochs", type=positive_int, help="override the preset's epoch count")
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
        type=positive_int,
        default=1,
        help="data-parallel processes on this machine (torchrun + DDP; default 1)",
    )
    train.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run from its checkpoint folder (build/runs/MODEL/...)",
    )
    train.set_defaults(func=cmd_train)

    tuner = sub.add_parser(
        "tune", help="search hyper-parameters with Optuna on held-out training data"
    )
    tuner.add_argument("model", help="a model name from models.toml")
    tuner.add_argument("--trials", type=positive_int, default=20, help="trials to run (default 20)")
    tuner.add_argument("--timeout", type=float, help="stop starting trials after this many minutes")
    tuner.add_argument("--base", help="preset the trials start from (default: [search] base)")
    tuner.add_argument("--storage", help="SQLite file of the study (default: build/tune/MODEL.db)")
    tuner.add_argument("--data", help=DATA_HELP)
    tuner.add_argument("--seed", type=int, default=0, help="seeds the sampler and every trial")
    tuner.add_argument("--write-preset", metavar="NAME", help="add the best trial as preset [NAME]")
    tuner.set_defaults(func=cmd_tune)


def cmd_train(args: argparse.Namespace) -> int:
    from modelfn.store import publish_artifact
    from training.errors import TrainingError
    from training.pipeline import train_model

    entry = load_registry().get(args.model)
    if args.nproc > 1:
        return _torchrun(args.argv, args.nproc)
    # Fail on a bad store URI or alias before spending minutes training.
    store = open_store(args.publish)
    check_aliases(args.alias)
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
            / f"{stamp}-{args.preset or entry.trained().training.preset}-seed{args.seed}"
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
    if entry.serving.precision == "int8":
        # Its function serves model.int8.onnx: the graph becomes a file of the version before
        # it is published, or, past the threshold, nothing is (Int8Refused, an ArtifactError).
        from tools.edge_test_data import load_test_data
        from tools.int8_version import add_int8_graph, describe

        print(describe(add_int8_graph(folder, entry, load_test_data(entry, args.data))))
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
