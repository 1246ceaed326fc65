"""How long an audit will take, from a short timed sample, so a long run says so before it starts.

One segment and one point are timed with the same analyzers the audit uses, and their times are
scaled by the number of segments (loop edges included) and points. A single item is an upper
bound: it pays the per-call overhead (thread start-up, first-call costs) that a batch shares.
Only when that bound says "long" is the sample refined with a small batch, sized to take about two
seconds, so a small model on a busy machine is not announced as minutes of work.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from regionaudit.analysis.density import trace_segments
from regionaudit.analysis.distance import boundary_distances

LONG_RUN_S = 30.0  # beyond this a person wants to know, and how to make it shorter
REFINE_S = 2.0  # time budget of the refining batch
REFINE_MAX = 8  # items in the refining batch at most


@dataclass
class Estimate:
    seconds: float
    segments: int  # segments and loop edges
    points: int


def estimate(network, segments: tuple[torch.Tensor, torch.Tensor], loop_edges: int, points: torch.Tensor,
             max_knots: int | None, max_memory: int | None, clock) -> Estimate:
    """Seconds for the whole audit, timed with `clock` (a seconds counter, injectable for tests)."""
    a, b = segments
    n_seg = len(a) + loop_edges
    per_segment = per_point = 0.0
    if len(a):
        per_segment = _per_item(
            lambda k: trace_segments(network, a[:k], b[:k], max_knots=max_knots, max_memory=max_memory),
            len(a), n_seg, clock,
        )
    if len(points):
        per_point = _per_item(lambda k: boundary_distances(network, points[:k], max_memory=max_memory), len(points), len(points), clock)
    return Estimate(seconds=per_segment * n_seg + per_point * len(points), segments=n_seg, points=len(points))


def _timed(work, clock) -> float:
    t0 = clock()
    work()
    return clock() - t0


def _per_item(run, available: int, total: int, clock) -> float:
    """Seconds per item: one item timed; if that makes the run look long, a batch of the first
    few items (within REFINE_S) timed too, and the smaller per-item time kept."""
    one = _timed(lambda: run(1), clock)
    if one * total <= LONG_RUN_S:
        return one
    k = max(1, min(available, REFINE_MAX, int(REFINE_S / one) if one > 0 else REFINE_MAX))
    return min(one, _timed(lambda: run(k), clock) / k)


def long_run_message(est: Estimate, pairs_used: bool, points_from_rows: bool, dtype: str, device: str) -> str | None:
    """One line for a run over LONG_RUN_S: the estimate and what would make it faster; else None."""
    if est.seconds <= LONG_RUN_S:
        return None
    faster = []
    if pairs_used and est.segments:
        faster.append("fewer --pairs")
    if points_from_rows and est.points:
        faster.append("fewer --max-points")
    if dtype == "float64":
        faster.append("--dtype float32")
    if device == "cpu":
        faster.append("--device cuda")
    hint = f"; faster with {', '.join(faster)}" if faster else ""
    return (
        f"this audit will take about {format_duration(est.seconds)} "
        f"({est.segments} segments, {est.points} points){hint}"
    )


def format_duration(seconds: float) -> str:
    """'45 s', '3 min', '1 h 20 min': as a person would say it."""
    s = round(seconds)
    if s < 120:
        return f"{s} s"
    minutes = round(s / 60)
    if minutes < 60:
        return f"{minutes} min"
    h, m = divmod(minutes, 60)
    return f"{h} h {m} min" if m else f"{h} h"
