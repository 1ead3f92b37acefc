"""The canary checker's decisions and the per-version figures they are taken on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelfn.artifact import Alias, Canary
from modelfn.canary import VersionStats, decide, percentile, stats_from_lines
from modelfn.registry import CanaryEntry

STABLE, CANARY = "20261201T000000Z-aaaaaaaa", "20261202T000000Z-bbbbbbbb"
BEGAN = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
LIMITS = CanaryEntry(max_error_rate=0.02, max_p99_ms=250, bake_minutes=30, min_requests=100)


def alias(canary: bool = True) -> Alias:
    return Alias(
        model="m",
        alias="prod",
        version=STABLE,
        manifest_sha256="a" * 64,
        updated_at=BEGAN,
        canary=Canary(version=CANARY, manifest_sha256="b" * 64, weight=10) if canary else None,
    )


def canary_stats(requests: int, errors: int = 0, p99: float = 100.0) -> dict[str, VersionStats]:
    return {CANARY: VersionStats(CANARY, requests, errors, 20.0, p99)}


@pytest.mark.parametrize(
    ("stats", "minutes", "action", "words"),
    [
        (canary_stats(99, errors=99), 60, "hold", "fewer than min_requests = 100"),
        ({}, 60, "hold", "answered 0 requests"),
        (canary_stats(100, errors=3), 5, "rollback", "3 of 100 requests with a server error"),
        (canary_stats(100, errors=2), 5, "hold", "min of its bake left"),  # 2% is the limit
        (canary_stats(200, p99=251.0), 5, "rollback", "over max_p99_ms = 250"),
        (canary_stats(200, errors=4, p99=250.0), 30, "promote", "within its limits"),
        (canary_stats(200), 29.5, "hold", "0.5 min of its bake left"),
    ],
)
def test_decide(stats: dict[str, VersionStats], minutes: float, action: str, words: str) -> None:
    decision = decide(alias(), stats, LIMITS, BEGAN + timedelta(minutes=minutes))
    assert decision.action == action
    assert words in decision.reason


def test_an_alias_without_a_canary_is_held() -> None:
    decision = decide(alias(canary=False), canary_stats(1000, errors=1000), LIMITS, BEGAN)
    assert decision.action == "hold"


def test_figures_count_only_request_lines_since_the_rollout_began() -> None:
    def line(version: str | None, status: int, ms: float, at: datetime) -> dict[str, object]:
        return {
            "message": "request",
            "version": version,
            "status": status,
            "duration_ms": ms,
            "_aws": {"Timestamp": int(at.timestamp() * 1000)},
        }

    after = BEGAN + timedelta(seconds=1)
    lines = [
        line(CANARY, 500, 999.0, BEGAN - timedelta(seconds=1)),  # before: another rollout's
        *(line(CANARY, 200, float(ms), after) for ms in range(1, 100)),
        line(CANARY, 500, 100.0, after),
        line(STABLE, 400, 5.0, after),  # the caller's error, not the version's
        line(None, 503, 1.0, after),  # no version answered
        {"message": "model loaded", "version": STABLE},
    ]
    stats = stats_from_lines(lines, since=BEGAN)
    assert set(stats) == {STABLE, CANARY}
    assert (stats[CANARY].requests, stats[CANARY].errors) == (100, 1)
    assert (stats[CANARY].p50_ms, stats[CANARY].p99_ms) == (50.0, 99.0)
    assert (stats[STABLE].requests, stats[STABLE].errors) == (1, 0)


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 99) == 0.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(v) for v in range(1, 201)], 99) == 198.0
