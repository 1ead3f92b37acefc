"""Where the tools write on this machine, and the local gateway's port: one place for the CLI and
the demo (neither imports the other for them)."""

from __future__ import annotations

from modelfn.registry import REPO_ROOT

BUILD = REPO_ROOT / "build"
BUILD_DIR = BUILD / "artifacts"  # `modelfn train` builds each artifact folder here first
RUNS_DIR = BUILD / "runs"  # a folder per training run: its epoch checkpoints
PACKAGE_DIR = BUILD / "package"  # `modelfn package` output, a folder per model and CPU
EDGE_DIR = BUILD / "edge"  # `modelfn export-edge` output: one .edge.tar.gz per version
DOWNLOAD_DIR = BUILD / "data"  # the demo's CIFAR-10 download, only where no data folder exists
DRIFT_DIR = BUILD / "drift"  # `modelfn drift` output: a folder per model, drift.md and its plots
# A real CIFAR-10 test image of a cat the demo writes, for the README's curl example.
DEMO_IMAGE = BUILD / "demo" / "cat.png"
# Where `modelfn serve` and the demo write each function's log (`<model>.log`), like CloudWatch,
# and where `modelfn rollout` reads them.
LOG_DIR = BUILD / "logs"
SERVE_PORT = 8080  # `modelfn serve`'s gateway (`make serve`); the demo points at it when done
