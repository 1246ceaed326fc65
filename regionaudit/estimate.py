"""How long an audit will take, from a short timed sample, so a long run says so before it starts.

One segment and one point are timed with the same analyzers the audit uses. A single item scaled
by the number of items is an upper bound (the analyzers work on whole batches, so a fixed cost per
call is paid once per batch, not per item), and when that bound is short, it is the estimate.
When it says "long", the sample is refined: the item is timed again without first-call costs and,
unless one item alone takes seconds, a small batch is timed too, so that the fixed cost per call
and the cost per item are told apart (on a busy 2-core machine the fixed cost is most of a small
model's single-item time).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from regionaudit.analysis.density import trace_segments
from regionaudit.analysis.distance import boundary_distances

LONG_RUN_S = 30.0  # beyond this a person wants to know, and how to make it shorter
REFINE_S = 2.0  # an item that takes this long is timed alone: its own cost dominates
REFINE_BATCH = 16  # items in the refining batch at most


@dataclass
class Estimate:
    seconds: float
    segments: int  # segments and loop edges
    points: int
    reference_s: float = 0.0  # of `seconds`, the init reference's share (--init-reference)


def estimate(network, segments: tuple[torch.Tensor, torch.Tensor], loop_edges: int, points: torch.Tensor,
             max_knots: int | None, max_memory: int | None, clock, directions: int | None = None,
             reference_copies: int = 0) -> Estimate:
    """Seconds for the whole audit, timed with `clock` (a seconds counter, injectable for tests);
    `directions` as the audit's boundary distance uses them (None: exact).

    `reference_copies` re-initialised copies (`--init-reference`) each measure the first 20
    segments and 10 points (regionaudit.reference); they are counted at the trained model's rate."""
    from regionaudit.reference import REFERENCE_POINTS, REFERENCE_SEGMENTS

    a, b = segments
    n_seg = len(a) + loop_edges
    seconds = reference = 0.0
    if len(a):
        cost = _cost(
            lambda k: trace_segments(network, a[:k], b[:k], max_knots=max_knots, max_memory=max_memory),
            len(a), n_seg, clock,
        )
        seconds += cost
        reference += reference_copies * cost * min(REFERENCE_SEGMENTS, len(a)) / n_seg
    if len(points):
        cost = _cost(
            lambda k: boundary_distances(network, points[:k], max_memory=max_memory, directions=directions),
            len(points), len(points), clock,
        )
        seconds += cost
        reference += reference_copies * cost * min(REFERENCE_POINTS, len(points)) / len(points)
    return Estimate(seconds=seconds + reference, segments=n_seg, points=len(points), reference_s=reference)


def _timed(work, clock) -> float:
    t0 = clock()
    work()
    return clock() - t0


def _cost(run, available: int, total: int, clock) -> float:
    """Seconds for `total` items, from `run(k)` on the first k of `available` items."""
    one = _timed(lambda: run(1), clock)
    if one * total <= LONG_RUN_S:
        return one * total  # an upper bound, and short
    one = min(one, _timed(lambda: run(1), clock))  # without lazy imports and other first-call costs
    if one >= REFINE_S or available < 2:
        return one * total
    k = min(available, REFINE_BATCH)
    per_item = max(0.0, (_timed(lambda: run(k), clock) - one) / (k - 1))
    return min(one * total, one + per_item * (total - 1))


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
    if est.reference_s > 0:
        faster.append("--init-reference 0")
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
