"""Outputs at the last kink node's new knots without that node's activations there.

After the last kink node L the network is affine: out = c + M h, with h the output of L. Between
two neighbouring knots, where everything up to L is affine, out is piecewise affine in the
fraction s of the way, with a kink wherever a unit of L crosses a breakpoint: crossing c of unit
u changes the slope d out / ds by w_c = M[u] * jump_u * |dz_u / ds| (`UnitKink.slope_jumps`). So
between two knots A < B whose outputs are known,

    out(s) = out_A + (s - s_A) / (s_B - s_A) * R + sum_{c: s_A < s_c <= s} w_c (s - s_c),
    R = out_B - out_A - sum_{c: s_A < s_c < s_B} w_c (s_B - s_c).

A crossing at s_A itself adds nothing (its terms cancel), so ties need no care. The density pass
computes the outputs through the tail at the old knots and at every `step`-th new knot in each
interval (anchors), and the knots between from this formula: a few multiply-adds per output
instead of a pass over L's width (23 328 units of a conv layer for 10 outputs). Every sum runs
over the crossings between two anchors only, so the rounding stays that of a forward pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from regionaudit.analysis.crossings import pooled_relus
from regionaudit.ir import Network, UnitKink

MIN_RATIO = 64  # units of L per output below which the ordinary insertion is as cheap
MAX_STEP = 4096  # widest anchor spacing a tight memory budget may force
PAIR_BYTES = 16 << 20  # working memory of the sums over the crossings passed, at a time


@dataclass(frozen=True)
class Tail:
    kink: int  # id of the kink node whose crossings are found: the last one, or the ReLU before it
    pool: int | None  # the last kink node where it is a max pool of that ReLU alone (else None)
    nodes: tuple[int, ...]  # the affine nodes after the last kink node, in order
    step: int  # anchors: every step-th new knot of an interval gets its activations
    row_cost: float  # memory of a knot without activations, as a fraction of one with them

    @property
    def last(self) -> int:
        """The last kink node: M maps its output."""
        return self.kink if self.pool is None else self.pool


def affine_tail(network: Network, order: list[int], per_knot: int, max_memory: int, pools: bool = True) -> Tail | None:
    """The tail after the last kink node when it pays: that node is elementwise (or, with
    `pools`, a max pool that alone reads a ReLU, which alone feeds it: see
    `crossings.pooled_relus`), the nodes after it read nothing from before it, the
    elementwise node's units outnumber the outputs `MIN_RATIO` times, and the matrix M fits well
    inside the budget; None otherwise."""
    kinks = [i for i in order if network.nodes[i].is_kink]
    if not kinks:
        return None
    kink, pool = kinks[-1], None
    if pools and kink in pooled_relus(network, order).values():
        kink, pool = network.nodes[kink].inputs[0], kink
    if not isinstance(network.nodes[kink], UnitKink):
        return None
    last = kink if pool is None else pool
    after = tuple(order[order.index(last) + 1 :])
    inside = {last, *after}
    if not after or any(j not in inside for i in after for j in network.nodes[i].inputs):
        return None
    units, n_out = network.nodes[kink].units, network.n_outputs
    itemsize = torch.empty((), dtype=network.dtype).element_size()
    mapped = math.prod(network.nodes[last].shape)
    if units < MIN_RATIO * n_out or mapped * n_out * itemsize * 8 > max_memory:
        return None
    # anchors cost a pass over the units, the knots between them about step/2 crossings' n_out
    step = min(256, max(8, int(math.sqrt(units / n_out))))
    return Tail(kink, pool, after, step, 4 * (n_out + 8) * itemsize / per_knot)


def tail_matrix(network: Network, tail: Tail) -> torch.Tensor:
    """M (outputs of the last kink node, n_outputs): the tail's Jacobian, by one backward pass
    per output (the tail is affine, so it is the same everywhere)."""
    x = torch.zeros((1, *network.nodes[tail.last].shape), dtype=network.dtype, device=network.device, requires_grad=True)
    with torch.enable_grad():
        values = {tail.last: x}
        for i in tail.nodes:
            node = network.nodes[i]
            values[i] = node.forward([values[j] for j in node.inputs])
        y = values[network.output].reshape(-1)
        cols = []
        for o in range(y.shape[0]):
            (g,) = torch.autograd.grad(y[o], x, retain_graph=o + 1 < y.shape[0], allow_unused=True)
            cols.append(torch.zeros_like(x).reshape(-1) if g is None else g.reshape(-1))
    return torch.stack(cols, dim=1).detach()


def anchors(j: torch.Tensor, step: int) -> torch.Tensor:
    """Which new knots (sorted by interval j) are anchors: every step-th of each interval."""
    ar = torch.arange(j.shape[0], device=j.device)
    first = torch.ones_like(j, dtype=torch.bool)
    first[1:] = j[1:] != j[:-1]
    start = torch.cummax(torch.where(first, ar, torch.zeros_like(ar)), 0).values
    return (ar - start) % step == step - 1


@dataclass
class TailFill:
    """What the formula needs of one insertion at the tail's kink node, rows in knot order."""

    exact: torch.Tensor  # (N,) bool: outputs come through the tail (old knots and anchors)
    old: torch.Tensor  # (N,) bool: knots that were there before the insertion
    s: torch.Tensor  # (N,) float64: fraction along the row's interval (0 at old knots)
    key: torch.Tensor  # (N,) float64, sorted: 2 * interval + s (old knot i: 2 i)
    cross_key: torch.Tensor  # (C,) every crossing's key, sorted
    cross_s: torch.Tensor  # (C,)
    cross_w: torch.Tensor  # (C, n_outputs): the slope change of each crossing

    @staticmethod
    def of(merge, n_old: int, new_j, new_s, new_exact, cross_j, cross_s, cross_w) -> "TailFill":
        """From an insertion: `merge(old_rows, new_rows)` puts rows in knot order; the new knots
        at fraction `new_s` of old interval `new_j`, those with values `new_exact`; every
        crossing (kept as a knot or not) at `cross_s` of `cross_j`, with its slope change."""
        dev = new_j.device

        def key(j, s):  # sorts rows and crossings together: by interval, then fraction
            return 2 * j.to(torch.float64) + s.to(torch.float64)

        cross_key = key(cross_j, cross_s)
        o = torch.sort(cross_key, stable=True).indices
        old_rows = torch.arange(n_old, device=dev)
        true, false = torch.ones(n_old, dtype=torch.bool, device=dev), torch.zeros(new_j.shape[0], dtype=torch.bool, device=dev)
        return TailFill(
            exact=merge(true, new_exact),
            old=merge(true, false),
            s=merge(torch.zeros(n_old, dtype=torch.float64, device=dev), new_s.to(torch.float64)),
            key=merge(key(old_rows, torch.zeros(n_old, device=dev)), key(new_j, new_s)),
            cross_key=cross_key[o],
            cross_s=cross_s.to(torch.float64)[o],
            cross_w=cross_w[o],
        )

    def outputs(self, exact_out: torch.Tensor) -> torch.Tensor:
        """Every row's outputs from those of the exact rows (N_exact, n_outputs)."""
        n = self.exact.shape[0]
        ar = torch.arange(n, device=self.exact.device)
        s_row, s_cross = self.s.to(exact_out.dtype), self.cross_s.to(exact_out.dtype)
        out = exact_out.new_empty((n, exact_out.shape[1]))
        out[self.exact] = exact_out
        rows = (~self.exact).nonzero().squeeze(1)
        if rows.numel() == 0:
            return out
        left = torch.cummax(torch.where(self.exact, ar, -1), 0).values  # last exact row <= r
        upto = torch.where(self.exact, ar, n).flip(0).cummin(0).values.flip(0)  # first exact row >= r
        after = torch.cat([upto[1:], upto.new_full((1,), n)])  # first exact row > r
        s_right = torch.where(self.old, torch.ones_like(s_row), s_row)  # as the end of an interval

        # R of each group (named by its left exact row): the crossings between the two rows
        pos = torch.searchsorted(self.key, self.cross_key, right=True) - 1
        group, right = left[pos], after[pos]
        r_end = s_right[right.clamp(max=n - 1)]
        total = torch.zeros_like(out).index_add_(0, group, self.cross_w * (r_end - s_cross)[:, None])
        lo, hi = left[rows], after[rows]
        s_lo, s_hi, s_r = s_row[lo], s_right[hi], s_row[rows]
        base = out[lo] + ((s_r - s_lo) / (s_hi - s_lo))[:, None] * (out[hi] - out[lo] - total[lo])

        out[rows] = base + self._passed(rows, lo, s_r, s_cross, base)
        return out

    def _passed(self, rows, lo, s_r, s_cross, like) -> torch.Tensor:
        """For each row r: the sum of w_c (s_r - s_c) over the crossings since its left exact row
        lo (keys in [key_lo, key_r]), as (row, crossing) pairs, a bounded number at a time
        (about step / 2 per row)."""
        first = torch.searchsorted(self.cross_key, self.key[lo])
        count = (torch.searchsorted(self.cross_key, self.key[rows], right=True) - first).clamp(min=0)
        ends = torch.cumsum(count, 0)
        per_chunk = max(64, PAIR_BYTES // (8 * (like.shape[1] + 6)))
        passed = torch.zeros_like(like)
        start = 0
        while start < rows.shape[0]:
            done = int(ends[start - 1]) if start else 0
            stop = max(start + 1, int(torch.searchsorted(ends, done + per_chunk, right=True)))
            counts = count[start:stop]
            row_of = torch.repeat_interleave(torch.arange(start, stop, device=rows.device), counts)
            skip = torch.repeat_interleave(first[start:stop] - (ends[start:stop] - counts - done), counts)
            c = torch.arange(row_of.shape[0], device=rows.device) + skip
            passed.index_add_(0, row_of, self.cross_w[c] * (s_r[row_of] - s_cross[c])[:, None])
            start = stop
        return passed
