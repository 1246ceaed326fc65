"""How long an audit will take, from a short timed sample, so a long run says so before it starts.

One segment and one point are timed with the same analyzers the audit uses (and a small part of
the 2-D slice, `_slice_cost`). A single item scaled
by the number of items is an upper bound (the analyzers work on whole batches, so a fixed cost per
call is paid once per batch, not per item), and when the whole audit's bounds are short, they are
the estimate. When their sum says "long", each kind of item is refined (`_Items`), however short
its own bound: a quick item is timed again without first-call costs and, unless one item alone
takes seconds, a small batch is timed too, so that the fixed cost per call and the cost per item
are told apart (on a busy 2-core machine the fixed cost is most of a small model's single-item
time; 1 100 segments and 1 100 points of a 784-256-256-10 MLP, each kind under 30 s by its bound,
were said to take 35 s together and took 10 s).

A segment of a deep net can take a minute by itself (a CIFAR ResNet-20 crosses 30 000 regions
between two Gaussian points), and the estimate is there to say so before that minute is spent: a
segment is timed on small parts of it spread along its length (`_sampled`), grown until they
take a moment, and the line through their last two timings is taken to the whole segment
(`_segment_seconds`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from regionaudit.analysis.density import trace_segments
from regionaudit.analysis.distance import boundary_distances
from regionaudit.analysis.slices import Plane, partition_plane

LONG_RUN_S = 30.0  # beyond this a person wants to know, and how to make it shorter
REFINE_S = 2.0  # an item that takes this long is timed once and alone: its own cost dominates first-call costs
REFINE_BATCH = 16  # items in the refining batch at most
PARTS = 8  # a segment is timed on this many parts spread along it
FIRST_PART = 1 / 256  # the parts' first share of the segment, grown 8-fold until they take PART_S
PART_S = 0.5
SLICE_SAMPLES = (250, 2000)  # regions of the 2-D slice's timed sample: the first that takes SLICE_SAMPLE_S
SLICE_SAMPLE_S = 1.0


@dataclass
class Estimate:
    seconds: float
    segments: int
    points: int
    reference_s: float = 0.0  # of `seconds`, the init reference's share (--init-reference)
    slice_s: float = 0.0  # of `seconds`, the 2-D slice's share
    loop_edges: int = 0
    loops_s: float = 0.0  # of `seconds`, the translation loops' share


def estimate(network, segments: tuple[torch.Tensor, torch.Tensor], loops: tuple[torch.Tensor, torch.Tensor, int] | None,
             points: torch.Tensor, max_knots: int | None, max_memory: int | None, clock, directions: int | None = None,
             reference_copies: int = 0, plane: Plane | None = None, max_regions: int | None = None) -> Estimate:
    """Seconds for the whole audit, timed with `clock` (a seconds counter, injectable for tests);
    `directions` as the audit's boundary distance uses them (None: exact).

    `loops`: the first loop's edges (starts, ends) and the edges of all loops; their edges, a few
    pixels long, are timed on their own. `reference_copies` re-initialised copies
    (`--init-reference`) each measure the first 20 segments and 10 points (regionaudit.reference);
    they are counted at the trained model's rate. `plane`: the 2-D slice's, partitioned up to
    `max_regions` (None: no slice)."""
    from regionaudit.reference import REFERENCE_POINTS, REFERENCE_SEGMENTS

    a, b = segments
    items = {}  # segments, loop edges, points: each timed one item at first
    if len(a):
        items["segments"] = _Items(
            lambda k: trace_segments(network, a[:k], b[:k], max_knots=max_knots, max_memory=max_memory), len(a), len(a),
            one=_segment_seconds(network, a[0], b[0], max_knots, max_memory, clock), warm=True,
        )
    edges = 0
    if loops is not None and loops[2]:
        la, lb, edges = loops

        def trace_edges(k: int):
            return trace_segments(network, la[:k], lb[:k], max_knots=max_knots, max_memory=max_memory)

        items["loops"] = _Items(trace_edges, len(la), edges, one=_timed(lambda: trace_edges(1), clock))
    if len(points):

        def distances(k: int):
            return boundary_distances(network, points[:k], max_memory=max_memory, directions=directions)

        items["points"] = _Items(distances, len(points), len(points), one=_timed(lambda: distances(1), clock))
    slice_s = _slice_cost(network, plane, max_regions, max_knots, max_memory, clock) if plane is not None else 0.0

    def shares(cost: dict[str, float]) -> tuple[float, float]:
        # the init reference's copies each measure the first segments and points, at the same rate
        seconds = sum(cost.values())
        reference = sum(reference_copies * cost[kind] * min(first, len(of)) / len(of)
                        for kind, first, of in (("segments", REFERENCE_SEGMENTS, a), ("points", REFERENCE_POINTS, points))
                        if kind in cost)
        return seconds, reference

    cost = {kind: part.bound for kind, part in items.items()}
    seconds, reference = shares(cost)
    if seconds + reference + slice_s > LONG_RUN_S:  # (a kind of item short alone can make a long audit with the others)
        cost = {kind: part.refined(clock) for kind, part in items.items()}
        seconds, reference = shares(cost)
    loops_s = cost.get("loops", 0.0)
    return Estimate(seconds=seconds + reference + slice_s, segments=len(a), points=len(points), reference_s=reference,
                    slice_s=slice_s, loop_edges=edges, loops_s=loops_s)


def _slice_cost(network, plane: Plane, max_regions: int | None, max_knots: int | None, max_memory: int | None,
                clock) -> float:
    """Seconds for the 2-D slice: a partition stopped at SLICE_SAMPLES regions, timed, and where the
    plane holds more, scaled to the regions it is expected to hold (at most `max_regions`).

    The count comes from the knots n_u and n_v on the box's two midlines. Lines thrown at random
    (an isotropic Poisson line process) that cross a test line P_L times per unit length meet
    pi P_L^2 / 4 times per unit area, so about pi n_u n_v / 4 times in the box; an arrangement of
    lines across the box has 1 + lines + meetings regions. On the sample models this is about
    1.3x the regions found, and the sample's time per region 0.9-2.2x the whole partition's (the
    first layers' polygons cost the most): the estimate errs long, as a warning should. Where the
    first, smaller sample already takes SLICE_SAMPLE_S, it is the sample (on a CIFAR ResNet-20 its
    time per region is within 10 % of a 2000-region sample's, which takes 14 s)."""
    def timed_sample(cap: int):
        t0 = clock()
        part = partition_plane(network, plane, max_regions=cap, max_memory=max_memory)
        return part, clock() - t0

    for cap in SLICE_SAMPLES:
        cap = cap if max_regions is None else min(cap, max_regions)
        sample, took = timed_sample(cap)
        if not sample.truncated or cap == max_regions:
            return took
        if took >= SLICE_SAMPLE_S:
            break
    umin, umax, vmin, vmax = plane.box
    cu, cv = plane.centre
    starts = plane.points([[umin, cv], [cu, vmin]])
    ends = plane.points([[umax, cv], [cu, vmax]])
    # (within --max-knots, as the audit's own segments: a count cut there makes the estimate short;
    # from parts of each midline where the midline itself would take long)
    n_u, n_v = (_midline_knots(network, starts[k], ends[k], max_knots, max_memory, clock) for k in range(2))
    expected = 1 + n_u + n_v + math.pi / 4 * n_u * n_v
    regions = expected if max_regions is None else min(expected, max_regions)
    scale = max(1.0, regions / sample.regions)
    if took * scale > LONG_RUN_S and took < REFINE_S:
        took = min(took, timed_sample(cap)[1])  # without first-call costs
    return took * scale


def _midline_knots(network, a: torch.Tensor, b: torch.Tensor, max_knots: int | None, max_memory: int | None,
                   clock) -> float:
    """Knots on the segment a -> b, counted or, from its parts, foretold; at most `max_knots`."""
    whole = _sampled(network, a, b, max_memory, clock).whole_knots
    return whole if max_knots is None else min(whole, max_knots)


def _timed(work, clock) -> float:
    t0 = clock()
    work()
    return clock() - t0


def _segment_seconds(network, a: torch.Tensor, b: torch.Tensor, max_knots: int | None, max_memory: int | None,
                     clock) -> float:
    """Seconds for the segment a -> b, from parts of it (`_sampled`).

    A trace's time is a fixed cost per call and a cost that grows with the knots it finds; the
    parts' knots grow with their share of the segment, so the time at the whole segment is the
    line through the parts' last two timings, taken to all of it, or to the share of its knots
    that --max-knots lets it find."""
    sample = _sampled(network, a, b, max_memory, clock)
    f = 1.0 if max_knots is None or sample.whole_knots <= max_knots else max_knots / sample.whole_knots
    if f <= sample.share:  # the parts hold that many knots already: their time in proportion
        return sample.seconds * f / sample.share
    return sample.seconds + sample.per_share * (f - sample.share)


@dataclass
class _Sample:
    share: float  # of the segment's length, in parts spread along it (1: the whole segment)
    seconds: float
    knots: int
    per_share: float = 0.0  # seconds per unit of share, from the last two timings

    @property
    def whole_knots(self) -> float:
        return self.knots / self.share


def _sampled(network, a: torch.Tensor, b: torch.Tensor, max_memory: int | None, clock) -> _Sample:
    """PARTS parts of the segment a -> b spread along it (they see its knots' density along all of
    it), traced in one call. The parts grow 8-fold from FIRST_PART of the segment until their
    trace takes PART_S, timed at two shares at least, or are the whole segment. A first call,
    untimed, takes the first-call costs."""
    def timed(share: float) -> tuple[float, int]:
        if share >= 1.0:
            starts, ends = a[None], b[None]
        else:
            centres = (torch.arange(PARTS, dtype=a.dtype, device=a.device) + 0.5) / PARTS
            half = share / (2 * PARTS)
            t0, t1 = (centres - half)[:, None], (centres + half)[:, None]
            flat_a, flat_b = a.reshape(1, -1), b.reshape(1, -1)
            starts = ((1 - t0) * flat_a + t0 * flat_b).reshape(PARTS, *a.shape)
            ends = ((1 - t1) * flat_a + t1 * flat_b).reshape(PARTS, *a.shape)
        begun = clock()
        traces = trace_segments(network, starts, ends, max_memory=max_memory)
        return clock() - begun, sum(trace.knots for trace in traces)

    share, before = FIRST_PART, None
    timed(share)  # first-call costs
    while share < 1.0:
        took, knots = timed(share)
        if took >= PART_S and before is not None:
            per_share = max(0.0, (took - before[1]) / (share - before[0]))
            return _Sample(share, took, knots, per_share)
        before, share = (share, took), share * 8
    return _Sample(1.0, *timed(1.0))


@dataclass
class _Items:
    """`total` items of one kind (segments, loop edges or points), `run(k)` analysing the first k of
    `available` of them, and one item's seconds `one` (`warm`: timed without first-call costs)."""

    run: Callable[[int], object]
    available: int
    total: int
    one: float
    warm: bool = False

    @property
    def bound(self) -> float:
        """One item's seconds times `total`: an upper bound, the estimate of an audit that is short."""
        return self.one * self.total

    def refined(self, clock) -> float:
        """Seconds for the `total` items of a long audit: a quick item timed again without
        first-call costs and, unless one item takes seconds (or there is no other), a batch too."""
        one = self.one
        if not self.warm and 0 < one < REFINE_S:
            one = min(one, _timed(lambda: self.run(1), clock))  # without lazy imports and other first-call costs
        if one >= REFINE_S or self.available < 2 or one == 0:
            return one * self.total
        k = min(self.available, REFINE_BATCH)
        per_item = max(0.0, (_timed(lambda: self.run(k), clock) - one) / (k - 1))
        return min(one * self.total, one + per_item * (self.total - 1))


def long_run_message(est: Estimate, pairs_used: bool, points_from_rows: bool, dtype: str, device: str) -> str | None:
    """One line for a run over LONG_RUN_S: the estimate and what would make it faster; else None."""
    if est.seconds <= LONG_RUN_S:
        return None
    faster = []
    if pairs_used and est.segments > 1:
        faster.append("fewer --pairs")
    if est.loops_s > LONG_RUN_S / 2:
        faster.append("fewer --loops or --loop-steps")
    if points_from_rows and est.points > 1:
        faster.append("fewer --max-points")
    if dtype == "float64":
        faster.append("--dtype float32")
    if device == "cpu":
        faster.append("--device cuda")
    if est.reference_s > 0:
        faster.append("--init-reference 0")
    if est.slice_s > LONG_RUN_S / 2:
        faster.append("--no-slice or a lower --max-regions")
    hint = f"; faster with {', '.join(faster)}" if faster else ""
    return (
        f"this audit will take about {format_duration(est.seconds)} "
        f"({est.segments} segments, " + (f"{est.loop_edges} loop edges, " if est.loop_edges else "") + f"{est.points} points){hint}"
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
