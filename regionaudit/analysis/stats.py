"""Summaries and rank correlation with numpy only."""

from __future__ import annotations

import numpy as np


def _finite_array(values) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise ValueError("summary values must be finite")
    return arr


def summary(values) -> dict | None:
    """count, mean, median, p10, p90, min, max (linear percentiles); None when empty."""
    arr = _finite_array(values)
    if arr.size == 0:
        return None
    p10, med, p90 = np.percentile(arr, [10, 50, 90])
    return {
        "count": int(arr.size),
        "mean": float(arr.mean()),
        "median": float(med),
        "p10": float(p10),
        "p90": float(p90),
        "min": float(arr.min()),
        "max": float(arr.max()),
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
