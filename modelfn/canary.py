"""A canary rollout judged: per-version figures from the function's request lines, and the
decision a checker takes on them (docs/serving.md, "Canary rollouts").

Pure code, no AWS and no clock of its own: `modelfn rollout` feeds it the local function logs,
and the figures it prints; the checker (`modelfn rollout --check`, and the stage's scheduled
checker) decides with `decide` and moves the alias by compare-and-swap.

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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from modelfn.artifact import Alias
from modelfn.registry import CanaryEntry

Action = Literal["hold", "rollback", "promote"]


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
