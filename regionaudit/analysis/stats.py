"""Summaries with bootstrap intervals, rank correlation and paired tests (numpy and scipy.stats).

Every summary carries a seeded percentile-bootstrap 95 % interval of its median (B = 2000), so a
median is never shown without its uncertainty and gates can use the interval's ends.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as S

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def _finite_array(values) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise ValueError("summary values must be finite")
    return arr


def median_ci(arr: np.ndarray, seed: int = BOOTSTRAP_SEED) -> tuple[float | None, float | None]:
    """Percentile-bootstrap 95 % interval of the median; undefined (None) for fewer than 2 values."""
    if arr.size < 2:
        return None, None
    if np.all(arr == arr[0]):
        return float(arr[0]), float(arr[0])
    res = S.bootstrap(
        (arr,), np.median, n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=0.95, method="percentile",
        vectorized=True, axis=-1, random_state=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def summary(values, seed: int = BOOTSTRAP_SEED) -> dict | None:
    """count, mean, median, p10, p90, min, max (linear percentiles) and the median's ci95; None when empty."""
    arr = _finite_array(values)
    if arr.size == 0:
        return None
    p10, med, p90 = np.percentile(arr, [10, 50, 90])
    low, high = median_ci(arr, seed)
    return {
        "count": int(arr.size),
        "mean": float(arr.mean()),
        "median": float(med),
        "p10": float(p10),
        "p90": float(p90),
        "min": float(arr.min()),
        "max": float(arr.max()),
        "ci95_low": low,
        "ci95_high": high,
    }


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    ranks = np.empty(x.size, dtype=np.float64)
    # boundaries of runs of equal values
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], x.size]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + e - 1) / 2.0 + 1.0
    return ranks


def spearman(x, y) -> float | None:
    """Spearman rank correlation (average ranks for ties); None for < 3 values or a constant input."""
    xa, ya = _finite_array(x), _finite_array(y)
    if xa.size != ya.size:
        raise ValueError("spearman needs two sequences of the same length")
    if xa.size < 3 or np.all(xa == xa[0]) or np.all(ya == ya[0]):
        return None
    rx, ry = _average_ranks(xa), _average_ranks(ya)
    rx -= rx.mean()
    ry -= ry.mean()
    return float((rx * ry).sum() / np.sqrt((rx * rx).sum() * (ry * ry).sum()))


def spearman_test(x, y, seed: int = BOOTSTRAP_SEED) -> dict | None:
    """ρ, its two-sided p-value (scipy.stats.spearmanr) and a percentile-bootstrap 95 % interval
    over resampled pairs; None where ρ is undefined. Resamples with a constant side are dropped."""
    rho = spearman(x, y)
    if rho is None:
        return None
    xa, ya = _finite_array(x), _finite_array(y)
    p = float(S.spearmanr(xa, ya).pvalue)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, xa.size, size=(BOOTSTRAP_RESAMPLES, xa.size))
    rx, ry = S.rankdata(xa[idx], axis=1), S.rankdata(ya[idx], axis=1)  # average ranks, as `spearman`
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    den = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    ok = den > 0
    rhos = (rx * ry).sum(axis=1)[ok] / den[ok]
    low, high = (np.percentile(rhos, [2.5, 97.5]) if rhos.size else (None, None))
    return {
        "rho": rho,
        "p_value": p,
        "ci95_low": None if low is None else float(low),
        "ci95_high": None if high is None else float(high),
        "count": int(xa.size),
    }


def paired_tests(differences) -> dict:
    """Wilcoxon signed-rank (zero_method "wilcox": zero differences dropped) and the sign test
    (two-sided binomial test of the positive share among the nonzero differences)."""
    d = _finite_array(differences)
    nonzero = d[d != 0]
    out = {"wilcoxon_statistic": None, "wilcoxon_p_value": None, "sign_test_nonzero": int(nonzero.size),
           "sign_test_positive": int((nonzero > 0).sum()), "sign_test_p_value": None}
    if nonzero.size:
        w = S.wilcoxon(d, zero_method="wilcox")
        out["wilcoxon_statistic"] = float(w.statistic)
        out["wilcoxon_p_value"] = float(w.pvalue)
        out["sign_test_p_value"] = float(S.binomtest(int((nonzero > 0).sum()), int(nonzero.size), 0.5).pvalue)
    return out
