"""The numbers of a drift report: how far captured inputs moved from a version's reference.

Two measures per feature, both read from the few kilobytes a manifest keeps
(modelfn/reference_stats.py), never from the reference data itself:
- the population stability index (PSI) over the reference's own bins: a size of the shift, the
  one the verdict reads (`level`);
- for continuous features, the two-sample Kolmogorov-Smirnov statistic D against the reference's
  distribution rebuilt from its 101 percentiles, with its asymptotic p-value: evidence that the
  distributions differ at all. With thousands of records a p-value finds shifts too small to
  matter, so it is reported beside PSI, not flagged on.
And, for classifiers' answers, the same PSI over predicted labels (with the total variation
distance) and over the top score's histogram.

numpy only: the tool must not pull scipy in for two formulas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

# The conventional PSI bands of credit scoring (Siddiqi 2006, "Credit Risk Scorecards"; their
# statistics studied in Yurdakul 2018, "Statistical properties of the population stability
# index"): below 0.1 no significant change, 0.1-0.25 a moderate one worth a look, above 0.25 a
# significant shift.
PSI_FLAG = 0.25
PSI_MODERATE = 0.10
# An empty bin's proportion is raised to this before the logarithm, so a bin that one side never
# fills costs about (q - 1e-4) * ln(q / 1e-4) instead of infinity: 5% of captured inputs above
# everything the reference saw adds 0.31 alone, enough to flag, as it should.
PROPORTION_FLOOR = 1e-4
# Below this many captured inputs the figures are reported but nothing is flagged: PSI over few
# inputs is noisy, and the end bins make a single outlier count (one of 50 above the reference's
# maximum adds 0.1). Measured on normal samples against a 10,000-input reference, a population that
# has not moved scores PSI > 0.25 in 28% of draws of 50 inputs, 1% of 100, none of 200
# (tests/tools/test_drift_statistics.py holds 100 under 3% and 50 over 15%).
MIN_INPUTS = 100

Level = Literal["stable", "moderate", "drift"]


def proportions(counts: ArrayLike) -> NDArray[np.float64]:
    """Counts -> shares of their total, each at least PROPORTION_FLOOR."""
    array = np.asarray(counts, dtype=np.float64)
    total = array.sum()
    if total <= 0:
        raise ValueError("proportions of no counts at all")
    floored: NDArray[np.float64] = np.maximum(array / total, PROPORTION_FLOOR)
    return floored


def psi(reference_counts: ArrayLike, captured_counts: ArrayLike) -> float:
    """Population stability index of two histograms over the same bins:

        PSI = sum_i (q_i - p_i) * ln(q_i / p_i)

    with p_i the reference's share of bin i and q_i the captured share, each floored at
    PROPORTION_FLOOR (an empty bin). It is the symmetric Kullback-Leibler divergence
    KL(q||p) + KL(p||q): 0 for the same shares, growing with the shift, in either direction."""
    p, q = proportions(reference_counts), proportions(captured_counts)
    if p.shape != q.shape:
        raise ValueError(f"psi: {p.size} reference bins against {q.size} captured")
    return float(np.sum((q - p) * np.log(q / p)))


def level(value: float) -> Level:
    """A PSI's band: stable below PSI_MODERATE, moderate up to PSI_FLAG, drift above."""
    if value > PSI_FLAG:
        return "drift"
    return "moderate" if value >= PSI_MODERATE else "stable"


def total_variation(reference_counts: ArrayLike, captured_counts: ArrayLike) -> float:
    """Half the L1 distance of the two shares (no floor): the largest difference in probability
    the two give any set of outcomes, 0 to 1."""
    p = np.asarray(reference_counts, dtype=np.float64)
    q = np.asarray(captured_counts, dtype=np.float64)
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


# --- Kolmogorov-Smirnov against a percentile summary ---------------------------------------------


def _knots(quantiles: Sequence[float]) -> tuple[NDArray[np.float64], ...]:
    """The reference CDF's knots: each distinct percentile value, the probability just below it
    and at it. A value several percentiles share (a discrete feature, a pile of zeros) is a jump
    of the CDF from the first of them to the last."""
    values = np.asarray(quantiles, dtype=np.float64)
    probs = np.linspace(0.0, 1.0, len(values))
    knots, first = np.unique(values, return_index=True)
    last = len(values) - 1 - np.unique(values[::-1], return_index=True)[1]
    below = probs[first]
    below[0] = 0.0  # nothing of the reference lies below its minimum
    return knots, below, probs[last]


def reference_cdf(
    quantiles: Sequence[float], x: ArrayLike, *, left: bool = False
) -> NDArray[np.float64]:
    """The reference's CDF at `x` rebuilt from its percentiles, linear between them: F(x), or the
    limit from the left F(x-) where `left`. Accurate to about a percentile."""
    knots, below, at = _knots(quantiles)
    points = np.asarray(x, dtype=np.float64)
    # The segment each point lies in: knots[k] <= x < knots[k+1] (F), knots[k] < x <= knots[k+1] (F-).
    k = np.searchsorted(knots, points, side="left" if left else "right") - 1
    inside = (k >= 0) & (k < len(knots) - 1)
    kk = np.clip(k, 0, max(len(knots) - 2, 0))
    start, end = knots[kk], knots[np.minimum(kk + 1, len(knots) - 1)]
    width = np.where(end > start, end - start, 1.0)
    ramp = at[kk] + (points - start) / width * (below[np.minimum(kk + 1, len(knots) - 1)] - at[kk])
    # Outside the knots: 0 below the minimum, 1 from the maximum on (F) or past it (F-).
    return np.where(inside, ramp, np.where(k < 0, 0.0, 1.0))


def ks_statistic(quantiles: Sequence[float], sample: ArrayLike) -> float:
    """D = sup_x |F_ref(x) - F_captured(x)|, the reference's CDF from its percentiles and the
    captured one the sample's step function. Between two consecutive knots of either the
    difference is monotone, so the supremum is at a knot, from the left or at it."""
    values = np.sort(np.asarray(sample, dtype=np.float64))
    if values.size == 0:
        raise ValueError("ks_statistic of an empty sample")
    points = np.unique(np.concatenate([values, np.asarray(quantiles, dtype=np.float64)]))
    at = np.searchsorted(values, points, side="right") / values.size
    below = np.searchsorted(values, points, side="left") / values.size
    gaps = np.concatenate(
        [
            np.abs(reference_cdf(quantiles, points) - at),
            np.abs(reference_cdf(quantiles, points, left=True) - below),
        ]
    )
    return float(gaps.max())


def kolmogorov_survival(t: float) -> float:
    """P(K > t) for the Kolmogorov distribution, the limit of sqrt(n) * D under no difference.

    Two series, each fast where the other is slow (Marsaglia, Tsang & Wang 2003, section 1):
        P(K <= t) = sqrt(2 pi) / t * sum_{k>=1} exp(-(2k - 1)^2 pi^2 / (8 t^2))   for t < 1
        P(K > t)  = 2 * sum_{k>=1} (-1)^(k-1) exp(-2 k^2 t^2)                     otherwise"""
    if t <= 0:
        return 1.0
    k = np.arange(1, 101, dtype=np.float64)
    if t < 1.0:
        cdf = np.sqrt(2 * np.pi) / t * np.exp(-((2 * k - 1) ** 2) * np.pi**2 / (8 * t * t)).sum()
        return float(np.clip(1.0 - cdf, 0.0, 1.0))
    terms = (-1.0) ** (k - 1) * np.exp(-2 * k * k * t * t)
    return float(np.clip(2 * terms.sum(), 0.0, 1.0))


def ks_p_value(d: float, captured: int, reference: int) -> float:
    """The asymptotic p-value of a two-sample D: P(K > D * sqrt(n m / (n + m)))."""
    effective = captured * reference / (captured + reference)
    return kolmogorov_survival(d * float(np.sqrt(effective)))
