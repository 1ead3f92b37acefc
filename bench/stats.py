"""The arithmetic of a benchmark: percentiles, summaries and ratios, nothing measured here."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (numpy's
    default, "linear"), so p50 of an even count is the mean of the middle two."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, p99, min, max and count: the spread next to the centre."""
    return {
        "median": statistics.median(values),
        "p99": percentile(values, 99),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def ratio(value: float, baseline: float) -> float:
    """value / baseline; inf where the baseline is 0 (a ratio is never silently 0 or nan)."""
    return value / baseline if baseline else math.inf
