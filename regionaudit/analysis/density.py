"""Exact 1-D analysis by layerwise knot insertion (DESIGN.md, "Exact 1-D analysis").

Along x(t) = (1 - t) a + t b the network is piecewise affine in t. All knots of a batch of
segments travel through the network as one tensor; at every kink node the crossings between
neighbouring knots are found in closed form, inserted, and every live tensor gets its value there
by linear interpolation (exact: everything upstream is affine between neighbouring knots).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace
from typing import Callable

import torch

from regionaudit.analysis._common import (
    bounded_by_inputs,
    bytes_per_probe,
    check_finite,
    check_fits,
    default_max_memory,
    magnitude,
    needed_nodes,
    overwritable,
    readers,
    shares_storage,
)
from regionaudit.analysis.crossings import kink_crossings, maxpool_crossings, pooled_relus, relu_pool_crossings
from regionaudit.analysis.joins import Piece, stitch
from regionaudit.analysis.knots import Budget, Knots, Live, Overflow, groups, insert, pairs, rows
from regionaudit.analysis.refill import PAIR_BYTES, layer_source, refill, reshape_path
from regionaudit.analysis.tail import Tail, TailFill, affine_tail, tail_matrix
from regionaudit.errors import BadOption
from regionaudit.ir import Clip, Conv, LeakyRelu, MaxPool, Network, Node, Sum, UnitKink

MIN_KNOTS = 8  # the fewest knots one pass runs on, however small the memory budget
MIN_POINTS = 2  # the fewest points a join check keeps
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


@dataclass
class _Item:
    seg: int  # index of the original segment
    t0: float
    t1: float
    depth: int = 0


# ----------------------------------------------------------------------------------------------
# one pass of a batch of (sub-)segments through the network


class _Pass:
    def __init__(self, network: Network, order: list[int], last: dict[int, int], tail: Tail | None = None,
                 fused: dict[int, int] | None = None, pair_bytes: int = PAIR_BYTES):
        self.network = network
        self.order = order
        self.last = last
        self.tail = tail
        self.pair_bytes = pair_bytes  # `refill`'s working memory at a time
        self._tail_matrix: torch.Tensor | None = None  # computed at the first use
        # each ReLU whose max pool comes next and alone reads it: the pool's crossings are found
        # and inserted with the ReLU's (`_cross_fused`), unless the tail takes them (at later
        # ReLUs too: measured, with `_pooled_at_old_knots`, 13-26 % faster on the VGG-style nets)
        self.fused = {q: p for q, p in (fused or {}).items() if tail is None or q != tail.kink}
        # nodes whose output a convolution or dense layer reads through reshapes alone: where
        # refill runs that layer after a ReLU, it reads the ReLU's output at few rows and
        # entries, so that output waits to be made there (`Live.part`)
        self.read_by_layer = {layer_source(network, r) for r in order} - {None}
        # those another node reads too (a residual skip)
        self.read_again = {q for q in self.read_by_layer if len(readers(network, order, q)) > 1}
        # the reshapes on those paths: where their input waits, they wait too (`Live.defer_reshaped`)
        self.reshapes_to_layer = {q for r in order if layer_source(network, r) is not None
                                  for q in reshape_path(network, network.nodes[r].inputs[0])[0]}
        # fused pools whose reader is such a layer: their insertion also records where the
        # pooled output bends, so that the layer runs at few knots (refill.py)
        self.refilled = set(self.fused.values()) & self.read_by_layer
        # those read by that layer alone: their output waits for it, made at the rows and windows
        # it reads (`Live.defer_pooled`); one read again later (a residual skip) is made whole
        self.pools_waiting = {p for p in self.refilled if p != network.output and p not in self.read_again}
        self.found_early = set(self.fused.values()) | ({tail.pool} if tail is not None and tail.pool is not None else set())

    def run(
        self,
        items: list[_Item],
        A: torch.Tensor,
        B: torch.Tensor,
        max_knots: int | None,
        cap_knots: int,
        allow_overflow: bool,
    ) -> list[list[Piece]]:
        """The pieces of each item, in order: one, or several where its knots were split into
        groups (see `knots.groups`)."""
        net = self.network
        dev = net.device
        n = len(items)
        t = torch.tensor([[it.t0, it.t1] for it in items], dtype=torch.float64, device=dev).reshape(-1)
        idx = torch.tensor([it.seg for it in items], device=dev).repeat_interleave(2)
        tt = t.to(net.dtype)[:, None]
        x = (1 - tt) * A[idx] + tt * B[idx]
        k = Knots(
            t=t,
            seg=torch.arange(n, device=dev).repeat_interleave(2),
            src=torch.full((2 * n,), -1, dtype=torch.long, device=dev),
            values=Live({0: x.reshape(2 * n, *net.graph_input_shape)}),
            mag=magnitude(x),
            frozen=torch.zeros(n, dtype=torch.bool, device=dev),
            interior=torch.zeros(n, dtype=torch.long, device=dev),
        )
        pieces = self._from(k, 1, Budget(max_knots, cap_knots, allow_overflow))
        return [pieces[q] for q in range(n)]

    def _from(self, k: Knots, start: int, budget: Budget) -> dict[int, list[Piece]]:
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
            except Overflow as ov:
                bounds = groups(k, len(ov.t), budget)
                if bounds is None:
                    raise
            else:
                bounds = None
            if bounds is not None:
                return self._run_groups(k, bounds, pos, budget)
            refilled = None
            if k.kinked is not None and k.fill is None and layer_source(net, i) == k.kinked.node:
                q = node.inputs[0]
                # (the kink node's input rows, which its output waits on, are the pass's own
                # unless they are the pass's input, which the caller holds)
                spare = overwritable(k.values.held(), q, self.last, i) and net.nodes[k.kinked.node].inputs[0] != 0
                refilled = refill(net, i, k.values.part(q), k.kinked, k.t, self.pair_bytes, spare)
            if self._made_early(k, i):
                pass  # (the tail's ReLU and max pool, which wait with the pool's old knots: `_cross_tail`)
            elif pooled is not None:
                k.values[i] = pooled
            elif refilled is not None:
                k.values[i] = refilled
            elif fresh and isinstance(node, (LeakyRelu, Clip)) and self.last[node.inputs[0]] == i:
                # the input is the pass's own new copy (see `knots.insert`) and read last here;
                # where the layer after it may read only some rows (refill), it waits for that
                q = node.inputs[0]
                read_by_layer = i in self.read_by_layer or self.fused.get(i) in self.pools_waiting
                waits = k.kinked is not None and read_by_layer and _uniform(node) and not self._made_for_skip(k, i)
                if not (waits and k.values.defer_through(i, q, node.forward_inplace)):
                    k.values[i] = node.forward_inplace(k.values[q])
            elif (i in self.pools_waiting and k.kinked is not None and k.kinked.node == i and self.last[node.inputs[0]] == i
                  and k.values.defer_pooled(i, node.inputs[0], node, k.kinked.old)):
                pass  # (a ReLU's pool waits with its input, for the layer after it: refill.py)
            elif (i in self.reshapes_to_layer and k.fill is None and self.last[node.inputs[0]] == i
                  and k.values.defer_reshaped(i, node.inputs[0], tuple(node.shape))):
                pass  # (it waits with its input, for the layer after it: refill.py)
            elif (isinstance(node, Conv) and node.sublattice() is not None and self.last[node.inputs[0]] == i
                  and k.values.deferred(node.inputs[0])):
                # (a 1x1 convolution at stride s reads one cell in s^d of its input, which waits:
                # it is made at those cells alone)
                k.values[i] = node.forward_on_sublattice(k.values.part(node.inputs[0]).cells(node.sublattice()))
            elif isinstance(node, Sum) and self._add_waiting_term(k, i):
                pass  # (into its other term, in place)
            else:
                xs = [k.values[q] for q in node.inputs]
                if isinstance(node, Sum) and node.inputs[0] != 0 and overwritable(k.values.held(), node.inputs[0], self.last, i):
                    # (never the pass's input, which the caller holds)
                    k.values[i] = node.forward_inplace(xs)
                else:
                    k.values[i] = node.forward(xs)
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
            pieces[q] = [Piece(t0, ts, os, ss, fr)]
        return pieces

    def _made_early(self, k: Knots, i: int) -> bool:
        """Whether node i is the tail's ReLU or the max pool after it and the pool waits, its
        output at the old knots made with the ReLU's crossings (`_cross_tail`): neither is then
        computed."""
        tail = self.tail
        return tail is not None and tail.pool is not None and i in (tail.kink, tail.pool) and tail.pool in k.values

    def _made_for_skip(self, k: Knots, i: int) -> bool:
        """Whether ReLU i's output is made whole although the layer after it may read only some
        rows: where a skip reads it too and its insertion added fewer knots than there were. The
        layer then reads the old rows from it (refill.py), and the skip reads it as it lies
        instead of the ReLU made again at each later insertion (measured: the ResNets' density
        2-7 % faster than waiting)."""
        placed = k.kinked.placed
        return i in self.read_again and placed.j.shape[0] < placed.pos_old.shape[0]

    def _add_waiting_term(self, k: Knots, i: int) -> bool:
        """A residual sum a + b (two terms of its shape, coefficients 1) whose one term waits on
        its insertions and is read last here (a skip held across a block's kink nodes) and whose
        other was made and may be overwritten: the waiting term is added into the other where its
        rows lie (`Live.add_into`), never made whole. True when done so."""
        node = self.network.nodes[i]
        if len(node.inputs) != 2 or any(c != 1.0 for c in node.coeffs):
            return False
        for mine, waiting in (node.inputs, node.inputs[::-1]):
            if (k.values.deferred(waiting) and not k.values.deferred(mine) and mine != 0
                    and self.last[waiting] == i and overwritable(k.values.held(), mine, self.last, i)):
                out = k.values[mine]
                if tuple(out.shape[1:]) == tuple(node.shape) and out.is_contiguous() and k.values.add_into(out, waiting):
                    k.values[i] = out  # (a + b = b + a, to the bit)
                    return True
        return False

    def _run_groups(self, k: Knots, bounds: list[tuple[int, int]], pos: int, budget: Budget) -> dict[int, list[Piece]]:
        """Go on from node order[pos] with each group of rows [lo, hi) of k in turn, instead of
        starting the pass over: everything computed so far is kept. The groups waiting hold
        their rows; the group running may use the rest of the budget."""
        groups = [rows(k, lo, hi) for lo, hi in bounds]
        k.values = Live()  # only the groups' copies stay
        waiting = sum(int(g.t.shape[0]) for g in groups)
        out: dict[int, list[Piece]] = {}
        for g in range(len(groups)):
            part, groups[g] = groups[g], None
            waiting -= int(part.t.shape[0])
            for q, ps in self._from(part, pos, replace(budget, cap_knots=budget.cap_knots - waiting)).items():
                out.setdefault(q, []).extend(ps)
            del part
        return out

    def _cross(self, k: Knots, i: int, budget: Budget) -> bool:
        """Find kink node i's crossings between neighbouring knots and insert them; True when
        knots were inserted."""
        node = self.network.nodes[i]
        z = k.values[node.inputs[0]]
        if isinstance(node, UnitKink):
            j, col, a, b = kink_crossings(node, z, *pairs(k, z))
            s = a / (a - b)
            bends = (i, j, col % node.units, s)
        elif isinstance(node, MaxPool):
            j, s, *windows = maxpool_crossings(node, z, *pairs(k, z))
            bends = (i, *windows)
        else:  # pragma: no cover - the IR has no other kink nodes
            raise BadOption(f"unsupported kink node {node.kind}")
        return bool(j.numel()) and insert(k, i, j, s, budget, bends=bends) is not None

    def _cross_fused(self, k: Knots, i: int, budget: Budget) -> bool:
        """`_cross` for a ReLU whose max pool comes next and alone reads it: the ReLU's crossings
        and the pool's winner changes, found together from the ReLU's input, which is affine
        between the knots (`relu_pool_crossings`), are inserted at once, each knot counted at
        the node that makes it. The same knots as the ReLU's insertion then the pool's, with one
        pass over the live values instead of two. Where refill can run the layer that reads the
        pool, the windows where the pooled output bends are recorded for it. True when knots
        were inserted."""
        node = self.network.nodes[i]
        z = k.values[node.inputs[0]]
        pair_ok, floor = pairs(k, z)
        pool = self.fused[i]
        refilled = pool in self.refilled
        best = am = None
        if pool in self.pools_waiting:  # (the maxima come with the winners: the pool at the old knots)
            best, am = self.network.nodes[pool].forward_and_winners(z)
        found = relu_pool_crossings(node, self.network.nodes[pool], z, pair_ok, floor, kinks=refilled, am=am)
        if not found.j.numel():
            return False
        src = torch.where(found.by_pool, pool, i)
        bends = (pool, found.kink_j, found.window, found.kink_s) if refilled else None
        placed = insert(k, src, found.j, found.s, budget, bends=bends)
        if placed is not None and best is not None and k.kinked is not None:
            k.kinked.old = _pooled_at_old_knots(node, best, z)
        return placed is not None

    def _cross_pool(self, k: Knots, i: int, budget: Budget) -> torch.Tensor:
        """`_cross` for a max pool whose input is read last here; its output at every knot. The
        windows' maxima come with the winners the crossings need; at new knots they come from
        the interpolated input of those knots alone, and the input (k times the output's size)
        is never re-placed."""
        node = self.network.nodes[i]
        q = node.inputs[0]
        z = k.values[q]
        pooled, am = node.forward_and_winners(z)
        j, s, *windows = maxpool_crossings(node, z, *pairs(k, z), am=am)
        if not j.numel():
            return pooled
        del k.values[q]
        try:
            placed = insert(k, i, j, s, budget, bends=(i, *windows))
        except Overflow:
            k.values[q] = z  # the groups start over at this node
            raise
        if placed is None:
            return pooled
        return placed.merge(pooled, node.forward([placed.interpolate(z)]))

    def _cross_tail(self, k: Knots, i: int, budget: Budget) -> bool:
        """`_cross` for the kink node the affine tail starts at (see tail.py), and for the max
        pool after it where there is one: new knots get values only at anchors, the others their
        outputs from the kinks at the end of the pass. True when knots were inserted."""
        node = self.network.nodes[i]
        z = k.values[node.inputs[0]]
        pair_ok, floor = pairs(k, z)
        if self.tail.pool is None:
            j, col, a, b = kink_crossings(node, z, pair_ok, floor)
            s, src = a / (a - b), i
            kinks = (j, s, col, node.slope_jumps()[col] * (b - a).abs())
        else:
            pool = self.network.nodes[self.tail.pool]
            best, am = pool.forward_and_winners(z)  # (the winners come with each window's maximum)
            found = relu_pool_crossings(node, pool, z, pair_ok, floor, am=am)
            j, s = found.j, found.s
            src = torch.where(found.by_pool, self.tail.pool, i)
            kinks = (found.kink_j, found.kink_s, found.window, found.slope_change)
        if not j.numel():
            return False
        n_old = k.t.shape[0]
        placed = insert(k, src, j, s, budget, self.tail.step, self.tail.row_cost)
        if placed is None:
            return False
        if self._tail_matrix is None:
            self._tail_matrix = tail_matrix(self.network, self.tail)
        m = self._tail_matrix
        kink_j, kink_s, unit, change = kinks
        w = m.index_select(0, unit % m.shape[0]) * change[:, None]
        k.fill = TailFill.of(placed.merge, n_old, placed.j, placed.s, placed.exact, kink_j, kink_s, w)
        # the ReLU and its pool wait, the pool with its output at the old knots (`Pooled.old`):
        # made when the tail reads it, the pool runs at the new knots that get values alone and
        # the ReLU's output, which only the pool reads, is never made whole (measured: the pool
        # at every knot took 7-17 % of the density of nets that end in a ReLU, a max pool and
        # dense layers). (Nothing after the tail's kink node reads z: `affine_tail`.)
        if self.tail.pool is not None and k.values.defer_through(i, node.inputs[0], node.forward_inplace):
            k.values.defer_pooled(self.tail.pool, i, pool, _pooled_at_old_knots(node, best, z))
        return True


def _pooled_at_old_knots(relu: LeakyRelu, best: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """A max pool's output at the knots where the ReLU it alone reads has input z, from each
    window's maximum of z (`best`, which comes with the winners): the ReLU is increasing, so the
    ReLU of the maxima is the maximum of its outputs. In place, but where the maxima are z's
    own cells (1x1 windows)."""
    return relu.forward([best]) if shares_storage(best, z) else relu.forward_inplace(best)


def _uniform(node: Node) -> bool:
    """Whether a ReLU-like node applies the same numbers to every unit (a scalar slope or
    bounds): its forward pass then runs on any selection of its input's entries."""
    if isinstance(node, LeakyRelu):
        return node.scalar_slope() is not None
    return isinstance(node, Clip) and node.bounds() is not None


def _finish(network: Network, pieces: list[Piece], max_knots: int | None) -> list[SegmentTrace]:
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


def _as_points(network: Network, x, what: str = "segment ends") -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() == len(network.input_shape) and tuple(x.shape) == tuple(network.input_shape):
        x = x.unsqueeze(0)
    p = check_finite(network.prepare(x), what)
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
    A, B = _as_points(network, a, "segment starts"), _as_points(network, b, "segment ends")
    if A.shape[0] != B.shape[0]:
        raise BadOption(f"{A.shape[0]} segment starts but {B.shape[0]} ends")
    if max_knots is not None and max_knots < 0:
        raise BadOption("max_knots must be >= 0")
    n_seg = A.shape[0]
    if n_seg == 0:  # (nothing is traced, so no budget can be too small for it)
        return []
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
    pieces: dict[int, list[Piece]] = {s: [] for s in range(n_seg)}
    pending = [1] * n_seg
    traces: list[SegmentTrace | None] = [None] * n_seg
    # the first batch as if each segment had FIRST_KNOTS knots, then grown from the knots seen
    batch = max(1, min(n_seg, cap_knots // (4 * FIRST_KNOTS)))
    while queue:
        items = [queue.popleft() for _ in range(min(batch, len(queue)))]
        allow = len(items) == 1 and (items[0].t1 - items[0].t0 < 1e-9 or items[0].depth > 60)
        try:
            result = runner.run(items, A, B, max_knots, cap_knots, allow)
        except Overflow as ov:
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
                finished[it.seg] = stitch(network, order, pieces.pop(it.seg), A[it.seg], B[it.seg], cap_points)
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
