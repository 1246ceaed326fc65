"""Exact 1-D analysis by layerwise knot insertion (DESIGN.md, "Exact 1-D analysis").

Along x(t) = (1 - t) a + t b the network is piecewise affine in t. All knots of a batch of
segments travel through the network as one tensor; at every kink node the crossings between
neighbouring knots are found in closed form, inserted, and every live tensor gets its value there
by linear interpolation (exact: everything upstream is affine between neighbouring knots).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
import torch.nn.functional as F

from regionaudit.analysis._common import (
    T_MERGE,
    bounded_by_inputs,
    bytes_per_probe,
    check_fits,
    default_max_memory,
    first_kink,
    magnitude,
    needed_nodes,
    overwritable,
    where_true,
    zero_tolerance,
)
from regionaudit.analysis.crossings import kink_crossings, maxpool_crossings, pooled_relus, relu_crossings, relu_pool_crossings
from regionaudit.analysis.refill import PAIR_BYTES, Kinked, reads_kink, refill
from regionaudit.analysis.tail import MAX_STEP, Tail, TailFill, affine_tail, anchors, tail_matrix
from regionaudit.errors import BadOption
from regionaudit.ir import Clip, LeakyRelu, MaxPool, Network, Node, Sum, UnitKink

MIN_KNOTS = 8  # the fewest knots one pass runs on, however small the memory budget
MIN_POINTS = 2  # the fewest points a join check keeps
# At most this many old knots, a pass of mostly new knots interpolates by a matrix product with
# the old rows (measured: 1.4-1.9x faster than the gathers and lerp with 2-8 old knots, slower
# with 64)
PRODUCT_KNOTS = 16
# From one new knot per this many old ones, the live values get their rows by one weighted gather
# on CPU (`_Placement.interpolated`)
GATHER_RATIO = 4
# The first pass takes as many segments as fit if each had this many knots, not one: a GPU runs
# a pass of 32 segments in about the time of one (its steps wait on each other, not on its
# arithmetic). A guess too small costs nothing: a pass whose knots outgrow the budget goes on in
# groups, keeping what it computed.
FIRST_KNOTS = 1024


@dataclass
class SegmentTrace:
    """The knots of one segment and the network's outputs there."""

    t: torch.Tensor  # (K,) float64, sorted, t[0] = 0 and t[-1] = 1
    outputs: torch.Tensor  # (K, n_outputs)
    knots_per_layer: dict[str, int]  # kink node name -> interior knots it contributed
    truncated: bool = False  # stopped by max_knots: regions is then a lower bound
    made_by: torch.Tensor | None = None  # (K,) id of the kink node that made each knot, -1 at the two ends

    @property
    def knots(self) -> int:
        """Interior knots (boundaries crossed)."""
        return max(0, int(self.t.shape[0]) - 2)

    @property
    def regions(self) -> int:
        return self.knots + 1


class _Overflow(Exception):
    """A pass's knots outgrew its share of the memory budget; carries the knots it would have had."""

    def __init__(self, t: torch.Tensor, seg: torch.Tensor):
        super().__init__("knot budget exceeded")
        self.t = t
        self.seg = seg


@dataclass
class _Item:
    seg: int  # index of the original segment
    t0: float
    t1: float
    depth: int = 0


@dataclass
class _Piece:
    t0: float
    t: torch.Tensor
    outputs: torch.Tensor
    src: torch.Tensor  # (K,) id of the kink node that made each knot, -1 for piece endpoints
    truncated: bool


# ----------------------------------------------------------------------------------------------
# one pass of a batch of (sub-)segments through the network


@dataclass
class _Knots:
    """The state of one pass: every knot of every (sub-)segment in order, and what is known there."""

    t: torch.Tensor  # knot positions in [0, 1], the items' knots one after another
    seg: torch.Tensor  # the item each knot belongs to
    src: torch.Tensor  # the kink node that made each knot (-1: an end point)
    values: dict[int, torch.Tensor]  # live node values at every knot
    mag: torch.Tensor  # largest |value| computed so far at each knot: the scale of its rounding
    frozen: torch.Tensor  # per item: reached --max-knots
    interior: torch.Tensor  # per item: knots inserted so far
    fill: TailFill | None = None  # set at the tail's kink node: values then hold the exact rows only
    kinked: Kinked | None = None  # the last insertion, where the layer after it may use it (refill.py)


@dataclass(frozen=True)
class _Budget:
    max_knots: int | None  # --max-knots per segment
    cap_knots: int  # knots a pass (or a group of its knots) may hold in memory; it splits past half
    allow_overflow: bool  # a single segment may exceed cap_knots (it cannot be split further)


class _Pass:
    def __init__(self, network: Network, order: list[int], last: dict[int, int], tail: Tail | None = None,
                 fused: dict[int, int] | None = None, pair_bytes: int = PAIR_BYTES):
        self.network = network
        self.order = order
        self.last = last
        self.tail = tail
        self.pair_bytes = pair_bytes  # `refill`'s working memory at a time
        self._tail_matrix: torch.Tensor | None = None  # computed at the first use
        # the first kink node, where it is a ReLU whose max pool comes next: the pool's crossings
        # are found and inserted with the ReLU's (`_cross_fused`), unless the tail takes them
        first = first_kink(network, order)
        self.fused = {q: p for q, p in (fused or {}).items() if q == first and (tail is None or q != tail.kink)}
        # fused pools whose reader is a convolution or dense layer: their insertion also records
        # where the pooled output bends, so that the layer runs at few knots (refill.py)
        self.refilled = {p for p in self.fused.values() if any(reads_kink(network, r, p) for r in order)}
        self.found_early = set(self.fused.values()) | ({tail.pool} if tail is not None and tail.pool is not None else set())

    def run(
        self,
        items: list[_Item],
        A: torch.Tensor,
        B: torch.Tensor,
        max_knots: int | None,
        cap_knots: int,
        allow_overflow: bool,
    ) -> list[list[_Piece]]:
        """The pieces of each item, in order: one, or several where its knots were split into
        groups (see `_groups`)."""
        net = self.network
        dev = net.device
        n = len(items)
        t = torch.tensor([[it.t0, it.t1] for it in items], dtype=torch.float64, device=dev).reshape(-1)
        idx = torch.tensor([it.seg for it in items], device=dev).repeat_interleave(2)
        tt = t.to(net.dtype)[:, None]
        x = (1 - tt) * A[idx] + tt * B[idx]
        k = _Knots(
            t=t,
            seg=torch.arange(n, device=dev).repeat_interleave(2),
            src=torch.full((2 * n,), -1, dtype=torch.long, device=dev),
            values={0: x.reshape(2 * n, *net.graph_input_shape)},
            mag=magnitude(x),
            frozen=torch.zeros(n, dtype=torch.bool, device=dev),
            interior=torch.zeros(n, dtype=torch.long, device=dev),
        )
        pieces = self._from(k, 1, _Budget(max_knots, cap_knots, allow_overflow))
        return [pieces[q] for q in range(n)]

    def _from(self, k: _Knots, start: int, budget: _Budget) -> dict[int, list[_Piece]]:
        """Run the nodes order[start:] on the knots k; the pieces of each item k holds."""
        net = self.network
        for pos in range(start, len(self.order)):
            i = self.order[pos]
            node = net.nodes[i]
            tails = self.tail is not None and i == self.tail.kink
            found = i in self.found_early  # (a max pool whose crossings its ReLU found)
            pools = isinstance(node, MaxPool) and not found and self.last[node.inputs[0]] == i
            try:
                pooled = self._cross_pool(k, i, budget) if pools else None
                if tails:
                    fresh = self._cross_tail(k, i, budget)
                elif i in self.fused:
                    fresh = self._cross_fused(k, i, budget)
                else:
                    fresh = node.is_kink and not pools and not found and self._cross(k, i, budget)
            except _Overflow as ov:
                bounds = _groups(k, len(ov.t), budget)
                if bounds is None:
                    raise
            else:
                bounds = None
            if bounds is not None:
                return self._run_groups(k, bounds, pos, budget)
            refilled = None
            if k.kinked is not None and k.fill is None and reads_kink(net, i, k.kinked.node):
                refilled = refill(net, i, k.values[node.inputs[0]], k.kinked, k.t, self.pair_bytes)
            if pooled is not None:
                k.values[i] = pooled
            elif refilled is not None:
                k.values[i] = refilled
            elif fresh and isinstance(node, (LeakyRelu, Clip)) and self.last[node.inputs[0]] == i:
                # the input is the pass's own new copy (see _insert) and read last here
                k.values[i] = node.forward_inplace(k.values[node.inputs[0]])
            elif isinstance(node, Sum) and node.inputs[0] != 0 and overwritable(k.values, node.inputs[0], self.last, i):
                # (never the pass's input, which the caller holds)
                k.values[i] = node.forward_inplace([k.values[q] for q in node.inputs])
            else:
                k.values[i] = node.forward([k.values[q] for q in node.inputs])
            if not bounded_by_inputs(node) and k.fill is None:  # (after the last kink node, unread)
                k.mag = torch.maximum(k.mag, magnitude(k.values[i]))
            for q in list(k.values):
                if self.last.get(q, q) <= i:
                    del k.values[q]
        out = k.values[net.output]
        out = out.reshape(out.shape[0], -1)
        if k.fill is not None:
            out = k.fill.outputs(out)
        items, counts = torch.unique_consecutive(k.seg, return_counts=True)
        starts = torch.cumsum(counts, 0) - counts
        # (each item's numbers in one read: on a GPU every read waits for the device)
        items, counts, t0s, frozen = items.tolist(), counts.tolist(), k.t[starts].tolist(), k.frozen[items].tolist()
        pieces = {}
        for q, t0, fr, ts, os, ss in zip(items, t0s, frozen, k.t.split(counts), out.split(counts), k.src.split(counts)):
            pieces[q] = [_Piece(t0, ts, os, ss, fr)]
        return pieces

    def _run_groups(self, k: _Knots, bounds: list[tuple[int, int]], pos: int, budget: _Budget) -> dict[int, list[_Piece]]:
        """Go on from node order[pos] with each group of rows [lo, hi) of k in turn, instead of
        starting the pass over: everything computed so far is kept. The groups waiting hold
        their rows; the group running may use the rest of the budget."""
        groups = [_rows(k, lo, hi) for lo, hi in bounds]
        k.values = {}  # only the groups' copies stay
        waiting = sum(int(g.t.shape[0]) for g in groups)
        out: dict[int, list[_Piece]] = {}
        for g in range(len(groups)):
            part, groups[g] = groups[g], None
            waiting -= int(part.t.shape[0])
            for q, ps in self._from(part, pos, replace(budget, cap_knots=budget.cap_knots - waiting)).items():
                out.setdefault(q, []).extend(ps)
            del part
        return out

    def _cross(self, k: _Knots, i: int, budget: _Budget) -> bool:
        """Find kink node i's crossings between neighbouring knots and insert them; True when
        knots were inserted."""
        node = self.network.nodes[i]
        z = k.values[node.inputs[0]]
        if isinstance(node, UnitKink):
            j, col, a, b = kink_crossings(node, z, *_pairs(k, z))
            s = a / (a - b)
            bends = (i, j, col % node.units, s)
        elif isinstance(node, MaxPool):
            j, s, *windows = maxpool_crossings(node, z, *_pairs(k, z))
            bends = (i, *windows)
        else:  # pragma: no cover - the IR has no other kink nodes
            raise BadOption(f"unsupported kink node {node.kind}")
        return bool(j.numel()) and _insert(k, i, j, s, budget, bends=bends) is not None

    def _cross_fused(self, k: _Knots, i: int, budget: _Budget) -> bool:
        """`_cross` for a ReLU whose max pool comes next and alone reads it: the ReLU's crossings
        and the pool's winner changes, found together from the ReLU's input, which is affine
        between the knots (`relu_pool_crossings`), are inserted at once, each knot counted at
        the node that makes it. The same knots as the ReLU's insertion then the pool's, with one
        pass over the live values instead of two. Where refill can run the layer that reads the
        pool, the windows where the pooled output bends are recorded for it. True when knots
        were inserted."""
        node = self.network.nodes[i]
        z = k.values[node.inputs[0]]
        pair_ok, floor = _pairs(k, z)
        pool = self.fused[i]
        refilled = pool in self.refilled
        found = relu_pool_crossings(node, self.network.nodes[pool], z, pair_ok, floor, kinks=refilled)
        if not found.j.numel():
            return False
        src = torch.where(found.by_pool, pool, i)
        bends = (pool, found.kink_j, found.window, found.kink_s) if refilled else None
        return _insert(k, src, found.j, found.s, budget, bends=bends) is not None

    def _cross_pool(self, k: _Knots, i: int, budget: _Budget) -> torch.Tensor:
        """`_cross` for a max pool whose input is read last here; its output at every knot. The
        windows' maxima come with the winners the crossings need; at new knots they come from
        the interpolated input of those knots alone, and the input (k times the output's size)
        is never re-placed."""
        node = self.network.nodes[i]
        q = node.inputs[0]
        z = k.values[q]
        pooled, am = node.forward_and_winners(z)
        j, s, *windows = maxpool_crossings(node, z, *_pairs(k, z), am=am)
        if not j.numel():
            return pooled
        del k.values[q]
        try:
            placed = _insert(k, i, j, s, budget, bends=(i, *windows))
        except _Overflow:
            k.values[q] = z  # the groups start over at this node
            raise
        if placed is None:
            return pooled
        return placed.merge(pooled, node.forward([placed.interpolate(z)]))

    def _cross_tail(self, k: _Knots, i: int, budget: _Budget) -> bool:
        """`_cross` for the kink node the affine tail starts at (see tail.py), and for the max
        pool after it where there is one: new knots get values only at anchors, the others their
        outputs from the kinks at the end of the pass. True when knots were inserted."""
        node = self.network.nodes[i]
        z = k.values[node.inputs[0]]
        pair_ok, floor = _pairs(k, z)
        if self.tail.pool is None:
            j, col, a, b = kink_crossings(node, z, pair_ok, floor)
            s, src = a / (a - b), i
            kinks = (j, s, col, node.slope_jumps()[col] * (b - a).abs())
        else:
            found = relu_pool_crossings(node, self.network.nodes[self.tail.pool], z, pair_ok, floor)
            j, s = found.j, found.s
            src = torch.where(found.by_pool, self.tail.pool, i)
            kinks = (found.kink_j, found.kink_s, found.window, found.slope_change)
        if not j.numel():
            return False
        n_old = k.t.shape[0]
        placed = _insert(k, src, j, s, budget, self.tail.step, self.tail.row_cost)
        if placed is None:
            return False
        if self._tail_matrix is None:
            self._tail_matrix = tail_matrix(self.network, self.tail)
        m = self._tail_matrix
        kink_j, kink_s, unit, change = kinks
        w = m.index_select(0, unit % m.shape[0]) * change[:, None]
        k.fill = TailFill.of(placed.merge, n_old, placed.j, placed.s, placed.exact, kink_j, kink_s, w)
        return True


def _pairs(k: _Knots, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Which neighbouring knots form a pair to search (same item, not frozen), and each pair's
    rounding floor."""
    pair_ok = (k.seg[1:] == k.seg[:-1]) & ~k.frozen[k.seg[:-1]]
    floor = torch.maximum(k.mag[:-1], k.mag[1:]) * zero_tolerance(z.dtype)
    return pair_ok, floor


@dataclass
class _Placement:
    """Where an insertion put the old and the new rows: the kept crossings, at fraction `s` of
    the interval after old knot `j`."""

    j: torch.Tensor
    s: torch.Tensor
    pos_old: torch.Tensor
    pos_new: torch.Tensor
    exact: torch.Tensor | None = None  # which new rows got values (None: all; see tail.py)
    _plan: tuple | None = field(default=None, init=False, repr=False, compare=False)  # `interpolated`'s, made at its first call

    @staticmethod
    def of(j: torch.Tensor, s: torch.Tensor, n_knots: int, exact: torch.Tensor | None = None) -> "_Placement":
        """The placement of new knots (j, s), sorted by j, among n_knots old ones."""
        old_rows = torch.arange(n_knots, device=j.device)
        new_rows = j + 1 + torch.arange(j.shape[0], device=j.device)
        return _Placement(j, s, old_rows + torch.searchsorted(j, old_rows), new_rows, exact)

    def interpolate(self, v: torch.Tensor) -> torch.Tensor:
        """The new rows of v (old rows only): exact, v being affine between neighbouring knots."""
        w = self.s.to(v.dtype).reshape(-1, *([1] * (v.dim() - 1)))
        return torch.lerp(v.index_select(0, self.j), v.index_select(0, self.j + 1), w)

    def interpolated(self, v: torch.Tensor) -> torch.Tensor:
        """All rows of v (old rows only) in knot order: `merge(v, interpolate(v))`, on CPU in one
        weighted gather (`F.embedding_bag`, mode "sum") that writes each row once: an old row is
        itself times 1 (0 + 1 x v: equal, a -0.0 coming back as 0.0, which no crossing test
        tells apart), a new one (1 - s) v_j + s v_j+1, whose last digit may differ from lerp's
        (measured: 1.2-2.7x faster than the gathers, lerp and placing with a new row per 4 old
        ones or more, slower with one per 40)."""
        if v.device.type != "cpu":
            return self.merge(v, self.interpolate(v))
        if self._plan is None:
            self._plan = self._gather_plan()
        index, offsets, weights = self._plan
        flat = v.reshape(v.shape[0], math.prod(v.shape[1:]))
        out = F.embedding_bag(index, flat, offsets, mode="sum", per_sample_weights=weights.to(v.dtype))
        return out.reshape(-1, *v.shape[1:])

    def _gather_plan(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(index, offsets, weights) as embedding_bag takes them: row r of the result sums
        weights x rows index[offsets[r]:offsets[r + 1]] of the old rows."""
        j, m, n_old, dev = self.j, self.j.shape[0], self.pos_old.shape[0], self.j.device
        sizes = torch.ones(n_old + m, dtype=torch.long, device=dev)
        sizes[self.pos_new] = 2
        offsets = torch.cumsum(sizes, 0) - sizes
        index = torch.empty(n_old + 2 * m, dtype=torch.long, device=dev)
        weights = torch.empty(n_old + 2 * m, dtype=torch.float64, device=dev)
        at_old, at_new = offsets[self.pos_old], offsets[self.pos_new]
        index[at_old], weights[at_old] = torch.arange(n_old, device=dev), 1.0
        s = self.s.to(torch.float64)
        index[at_new], index[at_new + 1] = j, j + 1
        weights[at_new], weights[at_new + 1] = 1 - s, s
        return index, offsets, weights

    def merge(self, old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
        out = old.new_empty((old.shape[0] + new.shape[0], *old.shape[1:]))
        # index_copy_ of flat rows: 3-4x faster on CPU than an indexed assignment, or than
        # index_copy_ of rows that are themselves tensors
        flat = out.view(out.shape[0], math.prod(out.shape[1:]))
        flat.index_copy_(0, self.pos_old, old.reshape(old.shape[0], flat.shape[1]))
        flat.index_copy_(0, self.pos_new, new.reshape(new.shape[0], flat.shape[1]))
        return out


def _insert(
    k: _Knots, src: int | torch.Tensor, j: torch.Tensor, s: torch.Tensor, budget: _Budget, step: int = 1, row_cost: float = 0.0,
    bends: tuple | None = None,
) -> _Placement | None:
    """Insert the crossings found at kink node `src` (or each at its own, a tensor; at fraction
    `s` of the interval after knot `j`) as knots, giving every live value its exact interpolation
    there. Of crossings closer than T_MERGE the first in this order is kept. Where knots were
    inserted, every live value is then a new tensor of the pass's own, and the placement says
    where the rows went; None where none were. With `step` > 1 only every step-th new knot of an
    interval gets values (`tail.anchors`; the step doubles where the budget needs it), the others
    costing `row_cost` of a knot. `bends` (a node, old interval, unit of the node's output, and
    the fraction where known) says where that node's output kinks, for the layer after it (see
    refill.py)."""
    t, seg = k.t, k.seg
    n_knots = t.shape[0]
    h = t[j + 1] - t[j]
    ts = t[j] + h * s.to(torch.float64)
    src = torch.as_tensor(src, dtype=k.src.dtype, device=j.device).expand(j.shape[0])
    # order by (pair, position)
    o = torch.sort(ts, stable=True).indices
    j, s, ts, src = j[o], s[o], ts[o], src[o]
    o = torch.sort(j, stable=True).indices
    j, s, ts, src = j[o], s[o], ts[o], src[o]
    # one knot per cluster closer than T_MERGE (existing knots win)
    keep = (ts - t[j] >= T_MERGE) & (t[j + 1] - ts >= T_MERGE)
    close = torch.zeros_like(keep)
    close[1:] = (j[1:] == j[:-1]) & (ts[1:] - ts[:-1] < T_MERGE)
    keep &= ~close
    j, s, ts, src = where_true(keep, j, s, ts, src)
    frozen = None
    if j.numel() and budget.max_knots is not None:
        sg = seg[j]
        counts = torch.bincount(sg, minlength=k.frozen.shape[0])
        start = torch.cumsum(counts, 0) - counts
        rank = torch.arange(j.shape[0], device=j.device) - start[sg]
        allowed = (budget.max_knots - k.interior).clamp(min=0)
        ok = rank < allowed[sg]
        frozen = counts > allowed
        j, s, ts, src = where_true(ok, j, s, ts, src)
    m = j.shape[0]
    exact, held = None, m  # new rows that get values
    while step > 1 and m:
        exact = anchors(j, step)
        held = int(exact.sum())
        if 2 * (n_knots + held + row_cost * m) <= budget.cap_knots or 2 * step > MAX_STEP:
            break
        step *= 2
    if m and 2 * (n_knots + held + row_cost * m) > budget.cap_knots and not budget.allow_overflow:
        raise _Overflow(torch.cat([t, ts]).sort().values, seg)  # with the crossings it would add
    if frozen is not None:
        k.frozen |= frozen
    if m == 0:
        return None
    k.interior += torch.bincount(seg[j], minlength=k.interior.shape[0])
    placed = _Placement.of(j, s, n_knots, exact)
    k.kinked = None if bends is None or exact is not None else Kinked(bends[0], placed, *bends[1:])
    k.t = placed.merge(t, ts)
    k.src = placed.merge(k.src, src)
    k.seg = placed.merge(seg, seg[j])
    k.mag = placed.merge(k.mag, torch.maximum(k.mag[j], k.mag[j + 1]))
    _interpolate_values(k, placed if exact is None else _Placement.of(j[exact], s[exact], n_knots), n_knots)
    return placed


def _interpolate_values(k: _Knots, placed: _Placement, n_knots: int) -> None:
    """Every live value gets its rows at the placement's new knots."""
    j, s, m = placed.j, placed.s, placed.j.shape[0]
    merged = placed.merge
    old_rows = torch.arange(n_knots, device=j.device)
    # Each value gets its new rows in one fused pass (lerp), then both row sets are placed: n + 4m
    # row copies, the pass being memory-bound. With mostly new rows, interpolating every row (an
    # old row between itself and itself, weight 0: the same value) takes 3 (n + m) instead (on a
    # GPU; on CPU such a pass is a product or a gather). On CPU, from a new row per GATHER_RATIO
    # old ones, one weighted gather writes every row once (`_Placement.interpolated`).
    everywhere = m > 2 * n_knots
    by_product = everywhere and n_knots <= PRODUCT_KNOTS
    gathered = not by_product and j.device.type == "cpu" and GATHER_RATIO * m >= n_knots
    if everywhere and not gathered:
        left, right = merged(old_rows, j), merged(old_rows, j + 1)
        weight = merged(torch.zeros(n_knots, dtype=torch.float64, device=j.device), s.to(torch.float64))
    new_values = {}
    if by_product:  # rows of (1 - w, w) at (left, right): one pass that writes each row once
        rows = torch.arange(left.shape[0], device=j.device)
        mix = torch.zeros(left.shape[0], n_knots, dtype=torch.float64, device=j.device)
        mix.index_put_((rows, left), 1 - weight)
        mix.index_put_((rows, right), weight, accumulate=True)
    for q, v in k.values.items():
        if by_product:
            new_values[q] = (mix.to(v.dtype) @ v.reshape(n_knots, -1)).reshape(-1, *v.shape[1:])
        elif gathered:
            new_values[q] = placed.interpolated(v)
        elif everywhere:
            shape = (-1, *([1] * (v.dim() - 1)))
            new_values[q] = torch.lerp(v.index_select(0, left), v.index_select(0, right), weight.to(v.dtype).reshape(shape))
        else:
            new_values[q] = merged(v, placed.interpolate(v))
    k.values = new_values


def _groups(k: _Knots, wanted: int, budget: _Budget) -> list[tuple[int, int]] | None:
    """Row ranges [lo, hi) that cut the knots k, which would have grown to `wanted`, into groups
    of about a quarter of the budget's splitting point each; None where k is a single pair.

    A cut between two items needs nothing; a cut inside an item is at a knot made by a kink node,
    which both groups keep (one ends there, the next starts there): the knot stays exact and
    the join needs no check (`_stitch`).
    """
    n = int(k.t.shape[0])
    q = max(2, -(-8 * wanted // max(1, budget.cap_knots)))
    seg, src = k.seg.tolist(), k.src.tolist()
    bounds, lo = [], 0
    for g in range(1, q):
        r = max(lo + 1, (g * n) // q)
        while r < n - 1 and not (seg[r - 1] != seg[r] or (src[r] >= 0 and seg[r + 1] == seg[r])):
            r += 1
        if r >= n - 1:
            break
        if seg[r - 1] != seg[r]:
            bounds.append((lo, r))
        else:
            bounds.append((lo, r + 1))
        lo = r
    if not bounds:
        return None
    bounds.append((lo, n))
    return bounds


def _rows(k: _Knots, lo: int, hi: int) -> _Knots:
    """Rows [lo, hi) of the knots as a pass state of their own (copies: the group may overwrite
    them); the per-item counters stay shared."""
    return _Knots(
        t=k.t[lo:hi],
        seg=k.seg[lo:hi],
        src=k.src[lo:hi],
        values={q: v[lo:hi].clone() for q, v in k.values.items()},
        mag=k.mag[lo:hi],
        frozen=k.frozen,
        interior=k.interior,
    )


# ----------------------------------------------------------------------------------------------
# joining sub-segments


def _kink_inputs(network: Network, order: list[int], x: torch.Tensor):
    """Each kink node's input at points x (P, ...), and the rounding floor there (as in a pass)."""
    values = {0: network.prepare(x)}
    last = network.last_use(order)
    mag = magnitude(values[0])
    inputs, floors = {}, {}
    for i in order[1:]:
        node = network.nodes[i]
        xs = [values[k] for k in node.inputs]
        if node.is_kink:
            inputs[i], floors[i] = xs[0], mag * zero_tolerance(network.dtype)
        values[i] = node.forward(xs)
        if not bounded_by_inputs(node):
            mag = torch.maximum(mag, magnitude(values[i]))
        for k in list(values):
            if last.get(k, k) <= i:
                del values[k]
    return inputs, floors


def _crosses(node: UnitKink | MaxPool, z: torch.Tensor, floor: torch.Tensor) -> bool:
    """Whether a kink node sees a crossing between two points z (2, ...), read as a pass reads one."""
    ok = torch.ones(1, dtype=torch.bool, device=z.device)
    floor = floor.max().reshape(1)
    if isinstance(node, UnitKink):
        j, _ = relu_crossings(node.offsets(z), ok, floor)
    else:
        j, _, _, _ = maxpool_crossings(node, z, ok, floor)
    return j.numel() > 0


def _stitch(
    network: Network, order: list[int], pieces: list[_Piece], a: torch.Tensor, b: torch.Tensor, cap_points: int = 1 << 16
) -> _Piece:
    """Join a segment's pieces. Where both pieces hold the same knot made by a kink node (a pass
    split its knots into groups there), that is the knot. Elsewhere (a cut between knots) the join
    is a knot iff some kink node crosses between points just left and right of it; these joins
    are checked `cap_points // 2` at a time (memory bound)."""
    pieces = sorted(pieces, key=lambda p: p.t0)
    if len(pieces) == 1:
        return pieces[0]
    cuts = [q for q, right in enumerate(pieces[1:]) if int(right.src[0]) < 0]  # not at a shared knot
    sources: dict[int, int] = {}
    step = max(1, cap_points // 2)
    for lo in range(0, len(cuts), step):
        mids = []
        for q in cuts[lo : lo + step]:
            left, right = pieces[q], pieces[q + 1]
            mids.append((left.t[-2] + left.t[-1]) / 2)
            mids.append((right.t[0] + right.t[1]) / 2)
        tm = torch.stack(mids).to(network.dtype)[:, None]
        x = (1 - tm) * a.reshape(1, -1) + tm * b.reshape(1, -1)
        inputs, floors = _kink_inputs(network, order, x)
        for n, q in enumerate(cuts[lo : lo + step]):
            pair = slice(2 * n, 2 * n + 2)  # points just left and right of the join
            sources[q] = next((i for i in inputs if _crosses(network.nodes[i], inputs[i][pair], floors[i][pair])), -1)
    ts, outs, srcs = [pieces[0].t], [pieces[0].outputs], [pieces[0].src]
    for q, right in enumerate(pieces[1:]):
        if q not in sources:
            pass  # a shared knot: the left piece ends at it, with its source
        elif sources[q] >= 0:
            srcs[-1] = srcs[-1].clone()
            srcs[-1][-1] = sources[q]
        else:  # the join is inside a region: not a knot
            ts[-1], outs[-1], srcs[-1] = ts[-1][:-1], outs[-1][:-1], srcs[-1][:-1]
        ts.append(right.t[1:])
        outs.append(right.outputs[1:])
        srcs.append(right.src[1:])
    return _Piece(
        pieces[0].t0, torch.cat(ts), torch.cat(outs), torch.cat(srcs), any(p.truncated for p in pieces)
    )


def _finish(network: Network, pieces: list[_Piece], max_knots: int | None) -> list[SegmentTrace]:
    """The traces of whole segments: cut to --max-knots, and each kink node's knots counted, for
    all of them in one read (on a GPU every read waits for the device)."""
    cut = []
    for piece in pieces:
        t, outputs, src, truncated = piece.t, piece.outputs, piece.src, piece.truncated
        if max_knots is not None and t.shape[0] - 2 > max_knots:
            keep = torch.cat([torch.arange(max_knots + 1, device=t.device), torch.tensor([t.shape[0] - 1], device=t.device)])
            t, outputs, src, truncated = t[keep], outputs[keep], src[keep], True
        cut.append((t, outputs, src, truncated))
    if not cut:
        return []
    kinks = list(network.kink_ids)
    n_nodes = len(network.nodes)
    inner = [src[1:-1] for _, _, src, _ in cut]  # every interior knot's kink node
    sizes = [x.shape[0] for x in inner]
    dev = inner[0].device
    which = torch.repeat_interleave(torch.arange(len(inner), device=dev), torch.tensor(sizes, device=dev), output_size=sum(sizes))
    counts = torch.bincount(which * n_nodes + torch.cat(inner), minlength=len(inner) * n_nodes)
    counts = counts.reshape(len(inner), n_nodes)[:, kinks].tolist()
    return [
        SegmentTrace(t=t, outputs=outputs, knots_per_layer={network.nodes[i].name: c for i, c in zip(kinks, row)},
                     truncated=truncated, made_by=src)
        for (t, outputs, src, truncated), row in zip(cut, counts)
    ]


def _as_points(network: Network, x) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() == len(network.input_shape) and tuple(x.shape) == tuple(network.input_shape):
        x = x.unsqueeze(0)
    p = network.prepare(x)
    return p.reshape(p.shape[0], math.prod(network.input_shape))


def _split(item: _Item, tk: torch.Tensor, cap_knots: int) -> list[_Item]:
    """Cut a (sub-)segment whose knots `tk` (found so far, sorted) outgrew the budget into pieces
    holding about a quarter of the budget each, at midpoints between knots: one split instead of
    repeated halving, each of which would redo the pass up to the overflow."""
    n = int(tk.shape[0])
    parts = max(2, min(n - 1, -(-4 * n // max(1, cap_knots))))
    gaps = sorted({(k * (n - 1)) // parts for k in range(1, parts)})
    cuts = [float((tk[g] + tk[g + 1]) / 2) for g in gaps]
    ends = [item.t0, *cuts, item.t1]
    return [_Item(item.seg, lo, hi, item.depth + 1) for lo, hi in zip(ends[:-1], ends[1:])]


def _kink_bytes(network: Network, itemsize: int) -> int:
    """Bytes per point a join check keeps: every kink node's input."""
    return sum(math.prod(network.nodes[network.nodes[i].inputs[0]].shape) for i in network.kink_ids) * itemsize


def _knot_scratch(network: Network, node: Node) -> int:
    """Values one knot holds beside the live tensors while `node` runs in a pass: a kink node's
    scan keeps one-byte signs and sign changes (two bytes per unit and breakpoint: a value per
    unit covers them); a max pool reduces its windows tap by tap (a padded copy of its input, a
    partial maximum and its winner codes: three inputs' worth), or copies every window where
    that pays (`MaxPool.copy_windows`), with its maxima and their int64 indices."""
    if isinstance(node, UnitKink):
        return math.prod(node.shape)
    if isinstance(node, MaxPool):
        out = math.prod(node.shape)
        windows = out * math.prod(node.kernel) if node.copy_windows else 0
        return 3 * math.prod(network.nodes[node.inputs[0]].shape) + windows + 2 * out
    return 0


def bytes_per_knot(network: Network, order: list[int] | None = None) -> int:
    """Peak bytes one knot needs while a pass runs: what it holds at each node (the live values,
    twice while knots are inserted, and the node's scratch)."""
    itemsize = torch.empty((), dtype=network.dtype).element_size()
    return bytes_per_probe(network, needed_nodes(network) if order is None else order, itemsize, scratch=_knot_scratch)


def min_memory(network: Network) -> int:
    """The smallest memory budget `trace_segments` can work in: its fewest knots and points."""
    itemsize = torch.empty((), dtype=network.dtype).element_size()
    per_knot = bytes_per_knot(network)
    return max(MIN_KNOTS * per_knot, MIN_POINTS * (per_knot + _kink_bytes(network, itemsize)))


@torch.no_grad()
def trace_segments(
    network: Network,
    a,
    b,
    *,
    max_knots: int | None = None,
    max_memory: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[SegmentTrace]:
    """Every knot along each segment a[s] -> b[s] (shapes (S, *input_shape)), exactly.

    `max_knots` bounds the interior knots of one segment (the trace is then `truncated` and its
    `regions` a lower bound); `max_memory` bounds the working memory in bytes (default: a fraction
    of what is free); `progress(n)` is called with the number of segments just finished.
    """
    A, B = _as_points(network, a), _as_points(network, b)
    if A.shape[0] != B.shape[0]:
        raise BadOption(f"{A.shape[0]} segment starts but {B.shape[0]} ends")
    if max_knots is not None and max_knots < 0:
        raise BadOption("max_knots must be >= 0")
    n_seg = A.shape[0]
    order = needed_nodes(network)
    last = network.last_use(order)
    itemsize = torch.empty((), dtype=network.dtype).element_size()
    per_knot = bytes_per_knot(network, order)
    kink_bytes = _kink_bytes(network, itemsize)
    check_fits(min_memory(network), max_memory, network.device, f"one pass over {MIN_KNOTS} knots")
    if max_memory is None:
        max_memory = default_max_memory(network.device)
    cap_knots = max(MIN_KNOTS, int(max_memory) // per_knot)
    cap_points = max(MIN_POINTS, int(max_memory) // (per_knot + kink_bytes))
    # (a max pool's crossings found with its ReLU's would be cut by --max-knots in the order of
    # their positions, not the ReLU's crossings first)
    tail = affine_tail(network, order, per_knot, int(max_memory), pools=max_knots is None)
    # refill's column entries: on CPU a chunk that stays in the caches; on a GPU each chunk waits
    # for the device once, so a larger share of the budget
    pair_bytes = PAIR_BYTES if network.device.type == "cpu" else max(PAIR_BYTES, int(max_memory) // 16)
    runner = _Pass(network, order, last, tail, fused=pooled_relus(network, order) if max_knots is None else None,
                   pair_bytes=pair_bytes)

    queue: deque[_Item] = deque(_Item(s, 0.0, 1.0) for s in range(n_seg))
    pieces: dict[int, list[_Piece]] = {s: [] for s in range(n_seg)}
    pending = [1] * n_seg
    traces: list[SegmentTrace | None] = [None] * n_seg
    # the first batch as if each segment had FIRST_KNOTS knots, then grown from the knots seen
    batch = max(1, min(n_seg, cap_knots // (4 * FIRST_KNOTS)))
    while queue:
        items = [queue.popleft() for _ in range(min(batch, len(queue)))]
        allow = len(items) == 1 and (items[0].t1 - items[0].t0 < 1e-9 or items[0].depth > 60)
        try:
            result = runner.run(items, A, B, max_knots, cap_knots, allow)
        except _Overflow as ov:
            if len(items) > 1:
                queue.extendleft(reversed(items))
                batch = max(1, len(items) // 2)
                continue
            parts = _split(items[0], ov.t, cap_knots)
            pending[items[0].seg] += len(parts) - 1
            queue.extendleft(reversed(parts))
            continue
        total, finished = 0, {}
        for it, parts in zip(items, result):
            total += sum(p.t.shape[0] for p in parts)
            pieces[it.seg].extend(parts)
            pending[it.seg] -= 1
            if pending[it.seg] == 0:
                finished[it.seg] = _stitch(network, order, pieces.pop(it.seg), A[it.seg], B[it.seg], cap_points)
        for q, trace in zip(finished, _finish(network, list(finished.values()), max_knots)):
            traces[q] = trace
        if progress is not None and finished:
            progress(len(finished))
        # grow the batch while the knots stay well inside the budget (a pass splits past half of it)
        per_item = max(2.0, total / len(items))
        batch = max(1, min(int(cap_knots / (4 * per_item)), 4 * len(items)))
    return traces  # type: ignore[return-value]


@torch.no_grad()
def midpoint_check(network: Network, trace: SegmentTrace, a, b) -> float:
    """Max |outputs interpolated from the knots - a direct forward pass| at the knots' midpoints."""
    if trace.t.shape[0] < 2:
        return 0.0
    a = _as_points(network, a)[0]
    b = _as_points(network, b)[0]
    tm = ((trace.t[:-1] + trace.t[1:]) / 2).to(network.dtype)
    interp = (trace.outputs[:-1] + trace.outputs[1:]) / 2
    worst = 0.0
    for lo in range(0, tm.shape[0], 4096):
        tc = tm[lo : lo + 4096, None]
        direct = network.forward((1 - tc) * a + tc * b)
        worst = max(worst, float((direct - interp[lo : lo + 4096]).abs().max()))
    return worst
