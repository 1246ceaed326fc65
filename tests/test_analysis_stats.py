"""Summaries and Spearman correlation (stats.py)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from regionaudit.analysis.stats import RESAMPLE_UP_TO, median_rank_law, resampled_medians, spearman, summary


def test_summary_known_array():
    s = summary(list(range(1, 11)))
    ci = {"ci95_low": s["ci95_low"], "ci95_high": s["ci95_high"]}
    assert s == {"count": 10, "mean": 5.5, "median": 5.5, "p10": pytest.approx(1.9), "p90": pytest.approx(9.1),
                 "min": 1.0, "max": 10.0, **ci}
    assert all(isinstance(v, float) for k, v in s.items() if k != "count")
    assert s["ci95_low"] <= s["median"] <= s["ci95_high"]
    assert isinstance(s["count"], int)
    one = summary(np.array([2.5]))
    assert one == {"count": 1, "mean": 2.5, "median": 2.5, "p10": 2.5, "p90": 2.5, "min": 2.5, "max": 2.5,
                   "ci95_low": None, "ci95_high": None}
    odd = summary([4.0, 1.0, 3.0])
    assert odd["median"] == 3.0 and odd["p10"] == pytest.approx(1.4) and odd["p90"] == pytest.approx(3.8)


def test_summary_empty_and_non_finite():
    assert summary([]) is None
    assert summary(np.zeros((0,))) is None
    with pytest.raises(ValueError):
        summary([1.0, math.nan])
    with pytest.raises(ValueError):
        summary([1.0, math.inf])


def test_spearman_hand_example_with_ties():
    # ranks of y: 1, 2, 3.5, 5, 3.5 -> centred (-2, -1, .5, 2, .5); x centred (-2, -1, 0, 1, 2)
    # rho = 8 / sqrt(10 * 9.5)
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(8 / math.sqrt(95), rel=1e-14)
    assert spearman([10, 20, 30], [1, 4, 9]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # a nonlinear monotone map leaves the rank correlation unchanged
    x = np.array([0.3, 2.0, -1.0, 5.0, 4.0, 0.0])
    y = np.array([1.0, 0.5, 3.0, -2.0, 2.0, 0.1])
    assert spearman(x, y) == pytest.approx(spearman(np.exp(x), y ** 3), rel=1e-14)
    # against the textbook formula 1 - 6 Σd² / (n (n² - 1)) (no ties)
    rx = np.argsort(np.argsort(x)) + 1
    ry = np.argsort(np.argsort(y)) + 1
    n = len(x)
    assert spearman(x, y) == pytest.approx(1 - 6 * ((rx - ry) ** 2).sum() / (n * (n * n - 1)), rel=1e-14)


def test_spearman_undefined():
    assert spearman([1, 2], [3, 4]) is None
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    assert spearman([1, 2, 3], [2, 2, 2]) is None
    with pytest.raises(ValueError):
        spearman([1, 2, 3], [1, 2])


def test_bootstrap_interval_contains_the_median_and_is_seeded():
    rng = np.random.default_rng(5)
    values = rng.lognormal(size=150)
    s = summary(values)
    assert s["ci95_low"] < s["median"] < s["ci95_high"]
    assert summary(values) == s  # same seed, same interval
    other = summary(values, seed=1)
    assert other["median"] == s["median"] and (other["ci95_low"], other["ci95_high"]) != (s["ci95_low"], s["ci95_high"])
    # the interval matches scipy's percentile bootstrap with the same generator
    from scipy.stats import bootstrap

    ref = bootstrap((values,), np.median, n_resamples=2000, method="percentile", random_state=np.random.default_rng(0))
    assert s["ci95_low"] == pytest.approx(ref.confidence_interval.low)
    assert s["ci95_high"] == pytest.approx(ref.confidence_interval.high)
    assert summary([3.0, 3.0, 3.0])["ci95_low"] == 3.0


def _enumerated_median_ranks(n: int) -> dict[tuple[int, int], float]:
    """P(K1, K2) over all n**n resamples of ranks 1..n: the ranks np.median of each reads."""
    law: dict[tuple[int, int], float] = {}
    for draw in itertools.product(range(1, n + 1), repeat=n):
        s = sorted(draw)
        key = (s[(n - 1) // 2], s[n // 2])
        law[key] = law.get(key, 0.0) + n**-n
    return law


def _law_pmf(n: int) -> dict[tuple[int, int], float]:
    at_most, above = median_rank_law(n)
    p1 = np.diff(at_most, prepend=0.0)
    pmf: dict[tuple[int, int], float] = {}
    for k in range(1, n + 1):
        pmf[(k, k)] = p1[k - 1] * (1 - above[k - 1])
        for j in range(1, n - k + 1):  # P(K2 - K1 = j) from P(K2 - K1 > j) = (1 - j / (n - k))^(n/2)
            gap = (1 - (j - 1) / (n - k)) ** (n // 2) - (1 - j / (n - k)) ** (n // 2)
            pmf[(k, k + j)] = p1[k - 1] * above[k - 1] * gap
    return pmf


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_median_rank_law_equals_enumeration(n):
    law, enumerated = _law_pmf(n), _enumerated_median_ranks(n)
    for key in set(law) | set(enumerated):
        assert law.get(key, 0.0) == pytest.approx(enumerated.get(key, 0.0), abs=1e-13), key


@pytest.mark.parametrize("n", [5, 6])
def test_resampled_medians_follow_the_law(n):
    values = np.arange(1.0, n + 1) ** 2  # medians identify their ranks: (a^2 + b^2) / 2 differ
    draws = 200_000
    medians = resampled_medians(values, draws, np.random.default_rng(3))
    for (k1, k2), p in _enumerated_median_ranks(n).items():
        seen = np.count_nonzero(medians == (values[k1 - 1] + values[k2 - 1]) / 2) / draws
        assert abs(seen - p) <= 5 * math.sqrt(p * (1 - p) / draws) + 1e-9, (k1, k2)


@pytest.mark.parametrize("n", [RESAMPLE_UP_TO + 1, RESAMPLE_UP_TO + 2, 3000])
def test_large_summary_interval_is_the_same_bootstrap(n):
    """Above RESAMPLE_UP_TO values the medians come from their law: an interval within Monte
    Carlo error of scipy's resampling bootstrap, at a fraction of its time and memory."""
    from scipy.stats import bootstrap

    values = np.random.default_rng(n).lognormal(size=n)
    s = summary(values)
    assert s["ci95_low"] < s["median"] < s["ci95_high"]
    assert summary(values) == s
    ref = bootstrap((values,), np.median, n_resamples=20_000, method="percentile", random_state=np.random.default_rng(0))
    # B = 2000 puts an end's Monte Carlo error at a few % of the width, more in a sparse tail
    width = ref.confidence_interval.high - ref.confidence_interval.low
    assert abs(s["ci95_low"] - ref.confidence_interval.low) < 0.15 * width
    assert abs(s["ci95_high"] - ref.confidence_interval.high) < 0.15 * width


def test_spearman_test_matches_scipy():
    from scipy.stats import spearmanr

    from regionaudit.analysis.stats import spearman_test

    rng = np.random.default_rng(1)
    x = rng.normal(size=60)
    y = x + rng.normal(size=60)
    t = spearman_test(x, y)
    ref = spearmanr(x, y)
    assert t["rho"] == pytest.approx(ref.statistic, rel=1e-12)
    assert t["p_value"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert t["ci95_low"] < t["rho"] < t["ci95_high"]
    assert spearman_test(x, y) == t
    assert spearman_test([1, 2], [3, 4]) is None


def test_paired_tests_match_scipy_and_hand_values():
    from scipy.stats import binomtest, wilcoxon

    from regionaudit.analysis.stats import paired_tests

    d = [3, -1, 0, 2, 5, 0, 4, -2, 6, 1]
    t = paired_tests(d)
    assert t["wilcoxon_p_value"] == pytest.approx(wilcoxon(d, zero_method="wilcox").pvalue, rel=1e-12)
    # sign test by hand: 6 positive of 8 nonzero, two-sided: 2 * P(X >= 6), X ~ Bin(8, 1/2) = 2 * 37/256
    assert t["sign_test_nonzero"] == 8 and t["sign_test_positive"] == 6
    assert t["sign_test_p_value"] == pytest.approx(2 * 37 / 256, rel=1e-12)
    assert t["sign_test_p_value"] == pytest.approx(binomtest(6, 8).pvalue)
    none = paired_tests([0, 0, 0])
    assert none["wilcoxon_p_value"] is None and none["sign_test_p_value"] is None
