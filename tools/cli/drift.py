"""`modelfn drift`: have a model's inputs (or answers) moved away from what its version was
measured on? Captured records against the version's reference statistics (tools/drift/)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from modelfn.capture import CaptureRecord, capture_prefix
from modelfn.registry import ModelEntry, load_registry
from modelfn.store import ArtifactStore, NotFound, open_store
from tools.cli.arguments import Subparsers, duration
from tools.paths import DRIFT_DIR

if TYPE_CHECKING:
    from tools.drift.report import DriftReport

# Exit codes: 0 nothing flagged (also: too few records to flag), 2 nothing to compare (no
# records, no reference statistics; a usage error, as every command says one), 3 drift flagged:
# distinct from 1 (a crash), so a cron job or CI step can act on it alone.
DRIFT_FLAGGED = 3
DEFAULT_SINCE = "7d"  # a week: enough records at a low sample rate, recent enough to be today's

EPILOG = f"""\
exit codes:
  0  no drift flagged (the verdict is stable, moderate, or too few records to judge)
  2  nothing to compare: no captured records in the window, a version without reference
     statistics in its manifest, or records of a version the store does not hold (and the
     usual usage errors)
  {DRIFT_FLAGGED}  drift flagged: a feature's, the labels' or the confidence's PSI is above 0.25
writes drift.json, drift.md and a PNG per feature to --out; docs/serving.md, "Drift reports"."""


def register(sub: Subparsers) -> None:
    """Add `drift` to the `modelfn` command."""
    drift = sub.add_parser(
        "drift",
        help="compare a model's captured requests with its version's reference statistics",
        # Raw text (for the epilog's table): the description carries its own line breaks.
        description="Compare the inputs (and a classifier's answers) captured for a model with\n"
        "the reference statistics its version recorded on held-out data: PSI and\n"
        "Kolmogorov-Smirnov per input feature, label and confidence shift.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    drift.add_argument("model", help="a model name from models.toml")
    drift.add_argument(
        "--since",
        type=duration,
        default=DEFAULT_SINCE,
        metavar="DURATION",
        help=f"records of the last DURATION: 30m, 24h, 7d (default: {DEFAULT_SINCE})",
    )
    drift.add_argument(
        "--version",
        help="compare this version's records (default: the version most records name)",
    )
    drift.add_argument(
        "--store",
        help="store URI holding the versions and their capture/ records (default: "
        "model_artifacts/; a stage's: its artifact bucket, s3://...)",
    )
    drift.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="folder for drift.json, drift.md and the plots (default: build/drift/MODEL)",
    )
    drift.set_defaults(func=cmd_drift)


def _chosen_version(records: list[CaptureRecord]) -> str:
    """The version most records name; on a tie, the one captured last (records are oldest first)."""
    counts = Counter(r.version for r in records)
    last = {r.version: i for i, r in enumerate(records)}
    return max(counts, key=lambda v: (counts[v], last[v]))


def _no_records(
    entry: ModelEntry, store: ArtifactStore, since: datetime, version: str | None
) -> str:
    which = f"{entry.name} {version}" if version else entry.name
    where = f"{store.uri}/{capture_prefix(entry.name, version)}"
    if entry.capture.enabled:
        hint = (
            f"capture is on for it (sample_rate {entry.capture.sample_rate}): send requests to "
            "a function serving it (modelfn serve, or the stage's endpoint; deployed records reach "
            "the bucket through Firehose within minutes), point --store at the store they are "
            "delivered to, or widen --since"
        )
    else:
        hint = (
            f"capture is off for it: turn it on in models.toml ([models.{entry.name}.capture] "
            "sample_rate = 0.1 records one answered request in ten), serve or deploy it again, "
            "and send requests"
        )
    return f"no capture records for {which} since {since:%Y-%m-%d %H:%M} UTC in {where}: {hint}"


def cmd_drift(args: argparse.Namespace) -> int:
    """Write the drift report of MODEL's records since --since; exit 3 where drift is flagged."""
    from importlib.util import find_spec

    from modelfn.capture import read_captured
    from modelfn.store.transfer import read_published_manifest
    from tools.drift.compare import compare
    from tools.drift.report import DRIFT_MD, drift_files

    entry = load_registry().get(args.model)
    store = open_store(args.store)
    now = datetime.now(UTC)
    since = now - args.since
    records = read_captured(store, entry.name, since=since, version=args.version)
    if not records:
        print(f"error: {_no_records(entry, store, since, args.version)}", file=sys.stderr)
        return 2
    version = args.version or _chosen_version(records)
    others = Counter(r.version for r in records if r.version != version)
    records = [r for r in records if r.version == version]
    try:
        manifest = read_published_manifest(store, entry.name, version)
    except NotFound:
        print(
            f"error: the records name {entry.name} {version}, which is not published in "
            f"{store.uri}: drift compares them with that version's manifest; point --store at "
            "the store it was published to",
            file=sys.stderr,
        )
        return 2
    if manifest.reference is None:
        made = "imported" if manifest.imported else "trained"
        again = (
            "import it again with --examples, real inputs it is measured on (modelfn import "
            f"SOURCE --name {entry.name} ... --examples FILE ...)"
            if manifest.imported
            else f"train it again with this code (modelfn train {entry.name} --publish ...)"
        )
        print(
            f"error: {entry.name} {version} has no reference statistics in its manifest (it was "
            f"{made} before modelfn recorded them), so there is nothing to compare its records "
            f"with: {again}",
            file=sys.stderr,
        )
        return 2
    plots = find_spec("matplotlib") is not None
    report = compare(
        model=entry.name,
        version=version,
        reference=manifest.reference,
        records=records,
        since=since,
        now=now,
        other_versions=dict(others.most_common()),
        plots=plots,
    )
    out = args.out or DRIFT_DIR / entry.name
    out.mkdir(parents=True, exist_ok=True)
    for name, data in drift_files(report).items():
        (out / name).write_bytes(data)
    _print_summary(report, out / DRIFT_MD, plots)
    return DRIFT_FLAGGED if report.verdict == "drift" else 0


def _print_summary(report: DriftReport, page: Path, plots: bool) -> None:
    print(
        f"{report.model} {report.version}: {report.inputs} inputs in {report.records} requests "
        f"since {report.since:%Y-%m-%d %H:%M} UTC against {report.reference_data}"
    )
    for feature in report.features:
        ks = f", KS D {feature.ks:.3f} (p {feature.p_value:.2g})" if feature.ks is not None else ""
        print(f"  {feature.name:<12} PSI {feature.psi:7.3f} {feature.level}{ks}")
    for name, answer in report.answers():
        print(f"  {name:<12} PSI {answer.psi:7.3f} {answer.level}")
    for version, count in report.other_versions.items():
        print(f"  also captured: {version} ({count} records): --version {version}")
    flagged = f" ({', '.join(report.flagged)})" if report.flagged else ""
    print(f"verdict: {report.verdict}{flagged}")
    if not plots:
        print("plots skipped: matplotlib is not installed (pip install 'modelfn[train]')")
    print(f"report: {page}")
