"""The drift statistics on distributions whose answers are known (tools/drift/statistics.py)."""

from __future__ import annotations

import numpy as np
import pytest

from modelfn.reference_stats import bin_counts, feature_reference
from tools.drift.statistics import (
    MIN_INPUTS,
    PSI_FLAG,
    kolmogorov_survival,
    ks_p_value,
    ks_statistic,
    level,
    psi,
    reference_cdf,
    total_variation,
)


def direct_ks(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample D on the raw samples: both step CDFs at every point of either."""
    a, b = np.sort(a), np.sort(b)
    points = np.concatenate([a, b])
    fa = np.searchsorted(a, points, side="right") / a.size
    fb = np.searchsorted(b, points, side="right") / b.size
    return float(np.abs(fa - fb).max())


def captured_psi(reference: np.ndarray, captured: np.ndarray) -> float:
    ref = feature_reference(reference, "continuous")
    return psi(ref.counts, bin_counts(ref.cuts, captured))


def test_psi_is_zero_for_the_same_shares_and_follows_its_formula() -> None:
    assert psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0, abs=1e-12)
    p, q = np.array([0.5, 0.5]), np.array([0.8, 0.2])
    assert psi([50, 50], [80, 20]) == pytest.approx(float(np.sum((q - p) * np.log(q / p))))
    # An empty bin costs its floored share, not infinity.
    assert np.isfinite(psi([0, 100], [10, 90]))
    with pytest.raises(ValueError, match="bins"):
        psi([1, 2], [1, 2, 3])


def test_psi_of_the_same_distribution_is_small_and_a_shifted_one_is_flagged() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 10_000)
    same = captured_psi(reference, rng.normal(0, 1, 2_000))
    shifted = captured_psi(reference, rng.normal(1, 1, 2_000))  # one standard deviation
    assert same < 0.02
    assert shifted > PSI_FLAG and level(shifted) == "drift"
    assert level(0.15) == "moderate" and level(0.05) == "stable"


def test_min_inputs_keeps_false_flags_rare() -> None:
    """MIN_INPUTS' reason, measured: with nothing moved, 100 inputs against a 10,000-input
    reference flag (PSI > 0.25) rarely, and 50 flag often (the end bins make an outlier count)."""
    rng = np.random.default_rng(1)

    def false_flags(n: int, trials: int = 300) -> float:
        flags = 0
        for _ in range(trials):
            flags += captured_psi(rng.normal(size=10_000), rng.normal(size=n)) > PSI_FLAG
        return flags / trials

    assert false_flags(MIN_INPUTS) < 0.03
    assert false_flags(50) > 0.15


def test_ks_from_percentiles_matches_the_raw_two_sample_statistic() -> None:
    rng = np.random.default_rng(2)
    for shift in (0.0, 0.1, 0.3, 1.0):
        reference = rng.normal(0, 1, 2_000)
        captured = rng.normal(shift, 1.2, 300)
        d = ks_statistic(feature_reference(reference, "continuous").quantiles, captured)
        assert d == pytest.approx(direct_ks(reference, captured), abs=0.02)


def test_ks_handles_a_pile_of_equal_values() -> None:
    """oov_rate is 0 for many texts: the percentiles repeat, the CDF jumps."""
    rng = np.random.default_rng(3)

    def rates(n: int) -> np.ndarray:
        return np.where(rng.random(n) < 0.4, 0.0, rng.uniform(0, 0.1, n))

    reference, captured = rates(5_000), rates(500)
    quantiles = feature_reference(reference, "continuous").quantiles
    # The CDF at 0 is the share of zeros (0.4) and just below it 0.
    assert reference_cdf(quantiles, [0.0])[0] == pytest.approx(0.4, abs=0.011)
    assert reference_cdf(quantiles, [0.0], left=True)[0] == 0.0
    d = ks_statistic(quantiles, captured)
    assert d == pytest.approx(direct_ks(reference, captured), abs=0.02)
    assert ks_statistic(quantiles, np.zeros(100)) == pytest.approx(0.6, abs=0.011)


def test_ks_exactly_where_the_answer_is_known() -> None:
    quantiles = [32.0] * 101  # every image 32 pixels wide
    assert ks_statistic(quantiles, [32.0] * 10) == 0.0
    assert ks_statistic(quantiles, [32.0] * 5 + [64.0] * 5) == pytest.approx(0.5)
    # A uniform reference on 0..1 and every captured value at 0.995: just below it the reference
    # has 99.5% of its mass and the captured none (the gap is found from the left).
    uniform = list(np.linspace(0.0, 1.0, 101))
    assert ks_statistic(uniform, [0.995] * 10) == pytest.approx(0.995, abs=1e-12)
    assert ks_statistic(uniform, [0.5] * 10) == pytest.approx(0.5, abs=1e-12)


def test_kolmogorov_distribution_at_its_textbook_critical_values() -> None:
    # The asymptotic one-sample critical values: 1.224 (10%), 1.358 (5%), 1.628 (1%).
    assert kolmogorov_survival(1.2238) == pytest.approx(0.10, abs=5e-4)
    assert kolmogorov_survival(1.3581) == pytest.approx(0.05, abs=5e-4)
    assert kolmogorov_survival(1.6276) == pytest.approx(0.01, abs=5e-4)
    # Both series agree where they meet, and the tails are right.
    assert kolmogorov_survival(1 - 1e-9) == pytest.approx(kolmogorov_survival(1.0), abs=1e-8)
    assert kolmogorov_survival(0.2) == pytest.approx(1.0)
    assert kolmogorov_survival(0.0) == 1.0
    assert kolmogorov_survival(4.0) < 1e-12


def test_ks_p_value_is_uniform_without_a_shift_and_tiny_with_one() -> None:
    rng = np.random.default_rng(4)
    quantiles = feature_reference(rng.normal(size=20_000), "continuous").quantiles
    values = [
        ks_p_value(ks_statistic(quantiles, rng.normal(size=400)), 400, 20_000) for _ in range(200)
    ]
    # Under no difference about 5% fall below 0.05 (the rebuilt CDF's percent error adds a few).
    assert 0.0 <= np.mean(np.array(values) < 0.05) < 0.15
    assert 0.3 < float(np.median(values)) < 0.7
    shifted = ks_statistic(quantiles, rng.normal(0.5, 1, 400))
    assert ks_p_value(shifted, 400, 20_000) < 1e-6


def test_total_variation() -> None:
    assert total_variation([50, 50], [50, 50]) == 0.0
    assert total_variation([100, 0], [0, 7]) == 1.0
    assert total_variation([60, 40], [30, 70]) == pytest.approx(0.3)
