"""How long an audit will take, from a short timed sample, so a long run says so before it starts.

One segment and one point are measured (twice each, keeping the faster) with the same analyzers
the audit uses; the estimate is their times scaled by the number of segments (loop edges included)
and points. It errs high: a batch of segments shares work that a single one does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from regionaudit.analysis.density import trace_segments
from regionaudit.analysis.distance import boundary_distances

LONG_RUN_S = 30.0  # beyond this a person wants to know, and how to make it shorter


@dataclass
class Estimate:
    seconds: float
    segments: int  # segments and loop edges
    points: int


def estimate(network, segments: tuple[torch.Tensor, torch.Tensor], loop_edges: int, points: torch.Tensor,
             max_knots: int | None, max_memory: int | None, clock) -> Estimate:
    """Time one segment and one point with `clock` (a seconds counter, injectable for tests)."""
    a, b = segments
    n_seg = len(a) + loop_edges
    per_segment = per_point = 0.0
    if len(a):
        per_segment = _fastest_of_two(lambda: trace_segments(network, a[:1], b[:1], max_knots=max_knots, max_memory=max_memory), clock)
    if len(points):
        per_point = _fastest_of_two(lambda: boundary_distances(network, points[:1], max_memory=max_memory), clock)
    return Estimate(seconds=per_segment * n_seg + per_point * len(points), segments=n_seg, points=len(points))


def _fastest_of_two(work, clock) -> float:
    """The faster of two timed runs: the first call in a fresh process pays one-time costs
    (lazy imports, bytecode compilation, allocator warm-up) that would inflate the estimate
    a hundredfold."""
    times = []
    for _ in range(2):
        t0 = clock()
        work()
        times.append(clock() - t0)
    return min(times)


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
