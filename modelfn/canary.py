"""A canary rollout judged: per-version figures from the function's request lines, and the
decision a checker takes on them (docs/serving.md, "Canary rollouts").

No AWS and no clock of its own: `modelfn rollout` feeds it the local function logs (or
CloudWatch's figures, functions/canary_checker.py), and `check_alias` is the checker, the same
code over either: it reads the alias, decides with `decide`, and moves the alias by
compare-and-swap against the record it decided on, so a user's promote in between wins.

The rules, in order, over the requests the canary answered since the alias was written:
1. fewer than `min_requests`: hold (too few to judge a limit or a bake by);
2. its server-error rate (5xx answers per request) over `max_error_rate`: roll back;
3. its p99 latency over `max_p99_ms` (where set): roll back;
4. `bake_minutes` passed since the rollout began, within every limit: promote to every request;
5. otherwise hold.
Client errors (4xx: a malformed image, an unknown route) are the caller's, not the version's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelfn.artifact import Alias
from modelfn.store import ArtifactStore, NotFound, set_alias
from modelfn.store.transfer import read_alias_seen

Action = Literal["hold", "rollback", "promote"]


class CanaryEntry(BaseModel):
    """When a canary version is rolled back or promoted with nobody watching (docs/serving.md,
    "Canary rollouts"): the canary's limits over the requests it answered since the rollout began."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Server errors (5xx answers) per request the canary answered, as a fraction (0.01 = 1%).
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    # The canary's 99th-percentile latency through the function, in ms; None: no latency limit.
    max_p99_ms: float | None = Field(default=None, gt=0)
    # How long the canary serves within its limits before it is promoted to every request.
    bake_minutes: float = Field(default=30, ge=0)
    # Fewer requests than this are too few to judge a limit or a bake by: the checker holds.
    min_requests: int = Field(default=100, ge=1)


# The stage checker's environment, which infra/ writes and functions/canary_checker.py reads: the
# stage's store, its alarm topic, and per model {"alias", "service", "limits" (CanaryEntry)}.
STORE_ENV = "MODELFN_STORE_URI"
TOPIC_ENV = "MODELFN_ALARM_TOPIC_ARN"
MODELS_ENV = "MODELFN_CANARY_MODELS"


@dataclass(frozen=True)
class VersionStats:
    """What one version answered: requests, server errors, and latency percentiles (ms)."""

    version: str
    requests: int
    errors: int  # 5xx answers
    p50_ms: float
    p99_ms: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str  # names the figures and the limit behind the decision


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank `q`th percentile (CloudWatch's pNN over the same values); 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def stats_from_lines(
    lines: Iterable[Mapping[str, Any]], since: datetime
) -> dict[str, VersionStats]:
    """Per-version figures from the function's request lines (functions/observability.py) written
    at or after `since`; lines of other kinds, or without a version (a 503 before any model
    answered), are not counted."""
    since_ms = since.timestamp() * 1000
    latencies: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    for line in lines:
        version = line.get("version")
        if line.get("message") != "request" or not isinstance(version, str):
            continue
        if line.get("_aws", {}).get("Timestamp", 0) < since_ms:
            continue
        latencies.setdefault(version, []).append(float(line["duration_ms"]))
        errors[version] = errors.get(version, 0) + (int(line.get("status", 0)) >= 500)
    return {
        version: VersionStats(
            version, len(values), errors[version], percentile(values, 50), percentile(values, 99)
        )
        for version, values in latencies.items()
    }


def decide(
    alias: Alias, stats: Mapping[str, VersionStats], limits: CanaryEntry, now: datetime
) -> Decision:
    """Hold, roll back or promote the canary `alias` names (see the module docstring)."""
    canary = alias.canary
    if canary is None:
        return Decision(
            "hold", f"alias {alias.alias!r} names no canary; {alias.version} serves all"
        )
    seen = stats.get(canary.version, VersionStats(canary.version, 0, 0, 0.0, 0.0))
    if seen.requests < limits.min_requests:
        return Decision(
            "hold",
            f"canary {canary.version} answered {seen.requests} requests, fewer than "
            f"min_requests = {limits.min_requests} to judge it by",
        )
    if seen.error_rate > limits.max_error_rate:
        return Decision(
            "rollback",
            f"canary {canary.version} answered {seen.errors} of {seen.requests} requests with a "
            f"server error ({seen.error_rate:.2%}), over max_error_rate = {limits.max_error_rate:.2%}",
        )
    if limits.max_p99_ms is not None and seen.p99_ms > limits.max_p99_ms:
        return Decision(
            "rollback",
            f"canary {canary.version}'s p99 latency is {seen.p99_ms:.1f} ms over "
            f"{seen.requests} requests, over max_p99_ms = {limits.max_p99_ms:g}",
        )
    baked = now - alias.updated_at
    bake = timedelta(minutes=limits.bake_minutes)
    if baked >= bake:
        return Decision(
            "promote",
            f"canary {canary.version} served {seen.requests} requests for "
            f"{baked.total_seconds() / 60:.1f} min (bake_minutes = {limits.bake_minutes:g}) with "
            f"{seen.error_rate:.2%} server errors and p99 {seen.p99_ms:.1f} ms, within its limits",
        )
    return Decision(
        "hold",
        f"canary {canary.version} is within its limits after {seen.requests} requests; "
        f"{(bake - baked).total_seconds() / 60:.1f} min of its bake left",
    )


def check_alias(
    store: ArtifactStore,
    model: str,
    alias: str,
    limits: CanaryEntry,
    stats_of: Callable[[Alias], Mapping[str, VersionStats]],
    now: datetime,
) -> tuple[Alias, Decision]:
    """The checker: decide on the canary `alias` names, from the figures `stats_of` gives for
    the record as read, and roll it back or promote it. Returns the record decided on and the
    decision; AliasMoved (nothing written) where another writer moved the alias meanwhile."""
    seen = read_alias_seen(store, model, alias)
    if seen.record is None:
        raise NotFound(f"model {model!r} has no alias {alias!r} in {store.uri}")
    record = seen.record
    if record.canary is None:
        return record, decide(record, {}, limits, now)
    decision = decide(record, stats_of(record), limits, now)
    if decision.action != "hold":
        to = record.version if decision.action == "rollback" else record.canary.version
        set_alias(store, model, alias, to, seen=seen)
    return record, decision


def decision_line(record: Alias, decision: Decision, now: datetime) -> dict[str, Any]:
    """One decision as a JSON object: its log line and its alarm-topic message alike."""
    return {
        "message": "canary decision",
        "time": now.isoformat(),
        "model": record.model,
        "alias": record.alias,
        "stable": record.version,
        "canary": record.canary.version if record.canary else None,
        "weight": record.canary.weight if record.canary else None,
        "action": decision.action,
        "reason": decision.reason,
    }
