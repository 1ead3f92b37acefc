"""`modelfn rollout`: a canary rollout's per-version figures, and its checker run over local logs.

The figures come from the function's request lines (functions/observability.py), which
`modelfn serve` appends to `build/logs/<model>.log` as Lambda sends them to CloudWatch; only lines
written since the alias was last moved count (the rollout began then). The checker is
modelfn/canary.py's `check_alias`, the code the stage's checker runs over CloudWatch's figures.
Every decision is printed and appended, as one JSON line, to the decisions log beside the
function logs (`canary-decisions.log`, the local stand-in for the stage's alarm topic).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelfn.artifact import Alias
from modelfn.canary import Decision, VersionStats, check_alias, decision_line, stats_from_lines
from modelfn.registry import ModelEntry
from modelfn.store import ArtifactStore
from modelfn.store.base import NotFound
from modelfn.store.transfer import AliasSeen, describe_alias, read_alias_seen

DECISIONS_LOG = "canary-decisions.log"


@dataclass(frozen=True)
class Rollout:
    """An alias as read, and what each version answered since it was written."""

    seen: AliasSeen
    stats: dict[str, VersionStats]

    @property
    def record(self) -> Alias:
        assert self.seen.record is not None  # read_rollout refuses an absent alias
        return self.seen.record


def json_lines(texts: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The JSON lines among a function log's lines; anything else (a traceback's text) skipped."""
    for text in texts:
        if text.startswith("{"):
            try:
                yield json.loads(text)
            except ValueError:
                continue


def read_log_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON lines of a function's log."""
    if not path.is_file():
        return
    with path.open(encoding="utf-8") as fh:
        yield from json_lines(fh)


def read_rollout(store: ArtifactStore, entry: ModelEntry, alias: str, log_path: Path) -> Rollout:
    seen = read_alias_seen(store, entry.name, alias)
    if seen.record is None:
        raise NotFound(f"model {entry.name!r} has no alias {alias!r} in {store.uri}")
    return Rollout(seen, stats_from_lines(read_log_lines(log_path), since=seen.record.updated_at))


def report(rollout: Rollout) -> list[str]:
    """The rollout as lines of text: what the alias serves, then a row per version."""
    record = rollout.record
    lines = [
        (
            f"{record.model}: {record.alias} serves {describe_alias(record)} "
            f"(since {record.updated_at:%Y-%m-%d %H:%M:%S} UTC)"
        ),
        f"  {'version':<28} {'role':<7} {'requests':>8} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8}",
    ]
    roles = {record.version: "stable"}
    if record.canary is not None:
        roles[record.canary.version] = "canary"
    for version in sorted(roles.keys() | rollout.stats.keys()):
        s = rollout.stats.get(version, VersionStats(version, 0, 0, 0.0, 0.0))
        lines.append(
            f"  {version:<28} {roles.get(version, 'old'):<7} {s.requests:>8} {s.errors:>7} "
            f"{s.p50_ms:>8.1f} {s.p99_ms:>8.1f}"
        )
    return lines


def check(
    store: ArtifactStore,
    entry: ModelEntry,
    alias: str,
    log_path: Path,
    *,
    now: datetime | None = None,
    decisions_log: Path | None = None,
) -> Decision:
    """modelfn/canary.py's checker over the local function log: the decision is returned, and
    appended to `decisions_log`."""
    now = now or datetime.now(UTC)

    def from_log(record: Alias) -> dict[str, VersionStats]:
        return stats_from_lines(read_log_lines(log_path), since=record.updated_at)

    record, decision = check_alias(store, entry.name, alias, entry.canary, from_log, now)
    if decisions_log is not None:
        decisions_log.parent.mkdir(parents=True, exist_ok=True)
        with decisions_log.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(decision_line(record, decision, now)) + "\n")
    return decision


def cloudwatch_client() -> Any:
    """A CloudWatch client for `modelfn rollout --stage` (boto3 only there: local runs never
    import it)."""
    import boto3

    return boto3.client("cloudwatch")
