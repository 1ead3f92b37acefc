"""The `modelfn` command: train or import, publish, serve, package and export models to the edge.

Each module here adds its sub-commands (`register`) and runs them (`cmd_*`): train.py trains on
this machine, import_model.py brings in a model trained elsewhere, quantize.py derives a version
with an int8 graph, versions.py moves aliases in a store, local.py runs the functions here,
ship.py builds what leaves the machine, drift.py compares captured requests with a version's
reference statistics. Heavy imports (torch, moto, boto3) happen inside the sub-command that needs
them, so `modelfn --help` and `modelfn list` start fast.
"""

from __future__ import annotations

import argparse
import sys

from modelfn.artifact import ArtifactError
from modelfn.registry import RegistryError, UnknownModelError
from modelfn.store import StoreError
from tools.cli import drift, import_model, local, quantize, ship, train, versions


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelfn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for commands in (train, import_model, quantize, versions, drift, local, ship):
        commands.register(sub)
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
