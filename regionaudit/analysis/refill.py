"""A convolution or dense layer right after a kink node, run at the old knots only.

When kink node K inserts knots, its output h is piecewise affine along each interval between the
knots that were there before (old knots a < b), with kinks only at the units that cross inside:
h(s) = lerp(h_a, h_b, s) + e(s), e(s) nonzero only at those units. An affine node A after K
(through reshapes) then has A(h(s)) = lerp(A h_a, A h_b, s) + A_lin e(s): its outputs at the new
knots are the interpolation of its outputs at the old knots plus each crossing unit's column of
A (a kernel's taps for a convolution, a weight row for a dense layer) times that unit's e. Where
the intervals hold few crossings, that is a few multiply-adds per unit instead of A's full
multiply-adds per new knot: the layer after a wide first ReLU, whose knots are nearly all new,
runs on the segment's two ends. Exact to rounding (e is the computed h minus its interpolation).
On CPU the columns are rows of A as a dense matrix, all added by one sparse product
(`add_by_product`); elsewhere, or where that matrix would be too large, they are scattered.

A max pool's output bends where its window's winner changes or crosses zero: a ReLU and its
pool, found together, record those windows for the layer after the pool.

Where an old interval holds many kinks (the first kink node's: one interval per segment), every
row would need all of them; then every step-th new knot runs with the old knots as an anchor,
and each other row needs only the kinks between its two anchors (`_Frame.anchored`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch

from regionaudit.analysis._common import T_MERGE, sparse_rows
from regionaudit.analysis.tail import anchors
from regionaudit.conv import mac_cost
from regionaudit.ir import Conv, MatMul, Network, Reshape

if TYPE_CHECKING:  # (knots.py imports this module)
    from regionaudit.analysis.knots import Part

# multiply-adds of a layer's product that one scattered column entry costs, about (measured on
# CPU: 3-16 ns an entry, where a small-channel convolution's product takes 0.1-0.15 ns a
# multiply-add; with 16 here, a 64-channel layer after a max pool ran 1.8x slower than without)
SCATTER_COST = 64
PAIR_BYTES = 16 << 20  # working memory of the scattered column entries, at a time (on CPU)
COPY_COST = 100  # multiply-adds that one pass of copies over an output element costs, about
# On CPU, where every knot's output is written by one sparse product (`Placement.interpolated`):
# timed best of 15, 30 and 100 on the benchmark's conv nets (with 100, refill declined the
# layers of `maxpool-mnist-8`, 1.7x slower, and `digits_resnet`'s, 13 %)
CPU_COPY_COST = 30
# On CPU, a kinked unit's column may instead be a row of the layer's dense columns (its weight,
# or a convolution's as a matrix, input units x output units), all of them added by one product
# of the sparse e's with that matrix: rows read whole, 0.3-0.4 ns an output entry (measured),
# where the scatter spends 3-20 ns on each of a column's entries and its indices. The cost of
# one output entry so added, in multiply-adds of a wide product (timed best of 4, 8 and 16 on
# the CIFAR nets, by the anchor step it sets):
SPARSE_ENTRY_COST = 4
DENSE_COLUMNS_BYTES = 32 << 20  # the largest dense columns of a convolution kept with its node
SPARSE_PAIR_BYTES = 64  # a pair's bytes in the sparse product: two indices and a value, and their sorted copies


@dataclass
class Kinked:
    """One insertion at kink node `node`: the placement of its new knots among the old ones, and
    every unit of its output that kinks inside old interval j (pairs (j, unit), unsorted), at
    fraction s of that interval where known (a ReLU's crossing; None for a max pool)."""

    node: int
    placed: object  # knots.Placement
    j: torch.Tensor
    unit: torch.Tensor
    s: torch.Tensor | None = None
    old: torch.Tensor | None = None  # a max pool's output at the old knots, where its ReLU's insertion made it


@dataclass
class _Frame:
    """The rows the layer runs at and the others: `placed` is a placement (knots.Placement)
    whose old rows are the rows computed exactly and whose new rows are filled, each at fraction
    s between exact rows j and j + 1; and the kinked units of each gap between exact rows (pairs
    (gap, unit), sorted by gap; gap g follows exact row g)."""

    placed: object
    gap: torch.Tensor
    unit: torch.Tensor

    @staticmethod
    def old_knots(kinked: Kinked, units: int) -> "_Frame":
        return _Frame(kinked.placed, *_unique_pairs(kinked.j, kinked.unit, units))

    @staticmethod
    def anchored(kinked: Kinked, units: int, step: int, t: torch.Tensor) -> "_Frame":
        """Every step-th new knot of an old interval runs with the old knots: a gap then holds
        about `step` kinks instead of all of its old interval's. A kink within 2 T_MERGE (in t)
        of an anchor counts in both gaps around it (its knot may be on either side)."""
        placed = kinked.placed
        anchor = anchors(placed.j, step)
        n_old = placed.pos_old.shape[0]
        is_old = torch.cat([torch.ones(n_old, dtype=torch.bool, device=t.device), torch.zeros(int(anchor.sum()), dtype=torch.bool, device=t.device)])
        pos = torch.cat([placed.pos_old, placed.pos_new[anchor]])
        s = torch.cat([torch.zeros(n_old, dtype=torch.float64, device=t.device), placed.s[anchor].to(torch.float64)])
        key = torch.cat([2.0 * torch.arange(n_old, device=t.device, dtype=torch.float64), 2.0 * placed.j[anchor] + s[n_old:]])
        o = torch.argsort(pos)
        pos, is_old, s, key = pos[o], is_old[o], s[o], key[o]
        rest = ~anchor
        left = torch.searchsorted(pos, placed.pos_new[rest]) - 1
        s_left = s[left]
        s_right = torch.where(is_old[left + 1], torch.ones_like(s_left), s[left + 1])
        w = (placed.s[rest].to(torch.float64) - s_left) / (s_right - s_left)
        # each kink's gap, and the gap on the other side of an anchor within 2 T_MERGE of it
        width = (t[placed.pos_old[kinked.j + 1]] - t[placed.pos_old[kinked.j]]).clamp(min=1e-300)
        margin = 2 * T_MERGE / width
        ks = 2.0 * kinked.j + kinked.s.to(torch.float64)
        lo = torch.searchsorted(key, ks - margin, right=True) - 1
        hi = torch.searchsorted(key, ks + margin, right=True) - 1
        twice = hi != lo
        gap = torch.cat([lo, hi[twice]]).clamp(min=0)
        unit = torch.cat([kinked.unit, kinked.unit[twice]])
        filled = replace(placed, j=left, s=w, pos_old=pos, pos_new=placed.pos_new[rest], exact=None)
        return _Frame(filled, *_unique_pairs(gap, unit, units))

    def pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The kinked units of each gap, and of each filled row (its gap's): how many."""
        count = torch.bincount(self.gap, minlength=self.placed.pos_old.shape[0])
        return count, count[self.placed.j]


def layer_source(network: Network, i: int) -> int | None:
    """The node whose output node i reads through reshapes only, where node i is a convolution
    or a dense layer with one input (which refill may run at few knots); else None."""
    node = network.nodes[i]
    if not isinstance(node, (Conv, MatMul)) or len(node.inputs) != 1:
        return None
    return reshape_path(network, node.inputs[0])[1]


def reshape_path(network: Network, q: int) -> tuple[list[int], int]:
    """The reshapes from node q back, and the node they reshape (q itself where it is none)."""
    path = []
    while isinstance(network.nodes[q], Reshape):
        path.append(q)
        q = network.nodes[q].inputs[0]
    return path, q


def refill(network: Network, i: int, h: Part, kinked: Kinked, t: torch.Tensor,
           pair_bytes: int, spare: bool = False) -> torch.Tensor | None:
    """Node i's output at every knot (the exact rows computed, the others filled), its input h
    being the kink node's output at every knot (positions t), of which only the exact rows and
    the kinked units' entries are read; None where i is not a 2-D convolution or a dense layer,
    or where the columns would not save enough. The column entries are made, or added by the
    sparse product, `pair_bytes` at a time. `spare`: h's rows held are read nowhere after this
    (`Part.at_old_knots` may overwrite them)."""
    node = network.nodes[i]
    fan = _fan_out(node, h.shape)
    if fan is None:
        return None
    m, n_old = kinked.placed.j.shape[0], kinked.placed.pos_old.shape[0]
    # a row's cost, in multiply-adds of a wide product: twice a narrow product's, 32 times a
    # depthwise convolution's by taps (conv.mac_cost)
    row_cost = node.macs([tuple(h.shape[1:])]) * fan.mac_cost(h.dtype, t.device)
    units = math.prod(h.shape[1:])
    # the exact rows' copy and the pass that writes every knot's output (`interpolated`: one
    # sparse product on CPU, an interpolation and a merge elsewhere): they pay only where the
    # layer costs many multiply-adds per output (COPY_COST, CPU_COPY_COST) and, off CPU, where
    # most knots are new (measured with the interpolation and merge: slower with 20-30 % new
    # knots, or 72 per output; 2x faster with 128-144 and 99 %). On CPU a convolution, and a
    # dense layer whose input waits as it was at the insertion (`Part.held_at`: no
    # interpolation of the exact rows), pay with fewer new knots too, at the old knots alone
    # (the wide MLPs' density 1.2-1.45x faster, `oval21`'s 10 %; with 20-30 % new knots after
    # later ReLUs, `convbig-cifar` 19 %, `convsmall-mnist` 14 %, the ResNets 2-9 %)
    cpu = t.device.type == "cpu"
    few_new = cpu and (isinstance(fan, _ConvFan) or h.held_at(kinked.placed))
    copy_cost = CPU_COPY_COST if cpu else COPY_COST
    if (m < n_old and not few_new) or m * row_cost < copy_cost * (n_old + m) * math.prod(node.shape):
        return None
    dense = fan.has_dense_columns(t.device)
    column_cost = fan.outputs * SPARSE_ENTRY_COST if dense else fan.taps * SCATTER_COST
    frame = _Frame.old_knots(kinked, units)
    count, per = frame.pairs()
    if int(per.sum()) * column_cost > m * row_cost:
        # too many kinks per old interval (the first kink node's: one interval per segment);
        # anchors every `step` new knots (`anchor_step`)
        step = anchor_step(row_cost, column_cost)
        if kinked.s is None or step > m or m < n_old:
            return None
        frame = _Frame.anchored(kinked, units, step, t)
        count, per = frame.pairs()
        if int(per.sum()) * column_cost > m * row_cost:
            return None
    placed = frame.placed
    start = torch.cumsum(count, 0) - count
    dev = t.device
    row = torch.repeat_interleave(torch.arange(placed.j.shape[0], device=dev), per)
    first = torch.repeat_interleave(start[placed.j] - (torch.cumsum(per, 0) - per), per)
    u = frame.unit[torch.arange(row.shape[0], device=dev) + first]
    left, right = placed.pos_old[placed.j[row]], placed.pos_old[placed.j[row] + 1]
    w = placed.s[row].to(h.dtype)
    e = h.entries(placed.pos_new[row], u) - torch.lerp(h.entries(left, u), h.entries(right, u), w)
    exact = node.forward([h.at_old_knots(placed, spare)])
    out = placed.interpolated(exact)  # every row, in knot order: new row r at pos_new[r]
    at = placed.pos_new[row]
    if dense:
        add_by_product(out, at, u, e, fan.dense_columns(), pair_bytes)
    else:
        _scatter(fan, out, at, u, e, pair_bytes)
    return out


def _scatter(fan, out: torch.Tensor, row: torch.Tensor, u: torch.Tensor, e: torch.Tensor, pair_bytes: int) -> None:
    """`fan.add(out, row, u, e)`, `pair_bytes` of scattered entries at a time."""
    step = max(1, pair_bytes // (24 * fan.taps))  # an index, a weight and a product per entry
    for lo in range(0, row.shape[0], step):
        fan.add(out, row[lo : lo + step], u[lo : lo + step], e[lo : lo + step])


def anchor_step(per_row: int, per_column: int) -> int:
    """The power of two, at least 2, that minimises refill's cost with an anchor every `step` new
    knots: per new knot, per_row / step for the anchors' rows, plus step kinks (about as many
    as the gap between two anchors holds) times per_column for the others. Doubling step pays
    while 2 step^2 <= per_row / per_column (the minimum sqrt(per_row / per_column) rounded to the
    nearest power in log scale, not down: rounded down, a 16-channel convolution after a ReLU
    ran 6 % slower)."""
    step = 2
    while 2 * step * step * per_column <= per_row:
        step *= 2
    return step


def _unique_pairs(j: torch.Tensor, unit: torch.Tensor, units: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct (j, unit) pairs, sorted by j (a unit with two breakpoints kinks once)."""
    key = torch.unique(j * units + unit)
    return key // units, key % units


class _ConvFan:
    """Columns of a 2-D convolution: input unit (lead, c, y, x) reaches output (lead, co, oy, ox)
    for each tap (ky, kx) with oy * stride = y + pad - ky * dilation, with weight W[co, c, ky, kx]
    over the output channels of c's group."""

    def __init__(self, node: Conv, in_shape: tuple[int, ...]):
        self.node = node
        self.c_in, self.h, self.w = in_shape[-3:]
        c_out, cin_g, self.kh, self.kw = node.weight.shape
        self.cout_g = c_out // node.groups
        self.taps = self.kh * self.kw * self.cout_g
        self.out_c, self.oh, self.ow = node.shape[-3:]
        # row (c mod C_in/groups, ky, kx, group) holds the weights from input channel c at tap
        # (ky, kx) to its group's output channels
        self.columns = node.weight.permute(1, 2, 3, 0).reshape(-1, self.cout_g)
        self.plane = torch.arange(self.cout_g, device=node.weight.device) * (self.oh * self.ow)
        self.outputs = self.out_c * self.oh * self.ow  # (of one lead)

    def has_dense_columns(self, device: torch.device) -> bool:
        """Whether refill adds the columns by `add_by_product` with `dense_columns`: on CPU,
        where their rows cost less than the scattered taps and they fit DENSE_COLUMNS_BYTES."""
        size = self.c_in * self.h * self.w * self.outputs * self.node.weight.element_size()
        cheaper = self.outputs * SPARSE_ENTRY_COST < self.taps * SCATTER_COST
        return device.type == "cpu" and size <= DENSE_COLUMNS_BYTES and cheaper

    def dense_columns(self) -> torch.Tensor:
        """The convolution as a matrix (input units, output units) of one lead, built by the
        scatter itself (PAIR_BYTES of entries at a time) and kept with the node for the weight
        it came from."""
        weight = self.node.weight
        units = self.c_in * self.h * self.w
        cache, key = self.node._derived, ("dense columns", (self.c_in, self.h, self.w))
        kept, matrix = cache.get(key, (None, None))
        if kept is not weight:
            matrix = torch.zeros(units, self.out_c, self.oh, self.ow, dtype=weight.dtype, device=weight.device)
            every = torch.arange(units, device=weight.device)
            _scatter(self, matrix, every, every, torch.ones(units, dtype=weight.dtype, device=weight.device), PAIR_BYTES)
            matrix = matrix.reshape(units, self.outputs)
            cache[key] = (weight, matrix)
        return matrix

    def mac_cost(self, dtype: torch.dtype, device: torch.device) -> float:
        """What one multiply-add of the convolution costs (`conv.mac_cost`; 1 off float64 CPU,
        where torch's kernels run it)."""
        node = self.node
        if dtype != torch.float64 or device.type != "cpu":
            return 1.0
        return mac_cost((self.c_in, self.h, self.w), node.weight, node.strides, node.pads, node.dilations, node.groups)

    def add(self, out: torch.Tensor, row: torch.Tensor, u: torch.Tensor, e: torch.Tensor) -> None:
        """out[row] += each kinked unit u's column times its e."""
        node, dev = self.node, u.device
        (sh, sw), (dh, dw) = node.strides, node.dilations
        top, left = node.pads[0], node.pads[1]
        plane = self.c_in * self.h * self.w
        lead, rest = u // plane, u % plane
        c, y, x = rest // (self.h * self.w), (rest // self.w) % self.h, rest % self.w
        ky = torch.arange(self.kh, device=dev).repeat_interleave(self.kw)
        kx = torch.arange(self.kw, device=dev).repeat(self.kh)
        ny = y[:, None] + top - ky * dh  # (P, taps)
        nx = x[:, None] + left - kx * dw
        ok = (ny % sh == 0) & (nx % sw == 0) & (ny >= 0) & (nx >= 0) & (ny < self.oh * sh) & (nx < self.ow * sw)
        p, t = ok.nonzero(as_tuple=True)
        per_group = self.c_in // node.groups
        group = c[p] // per_group
        # every entry's place is its first output channel's plus a plane per channel after it
        leads = out[0].numel() // (self.out_c * self.oh * self.ow)
        first = ((row[p] * leads + lead[p]) * self.out_c + group * self.cout_g) * (self.oh * self.ow)
        first += (ny[p, t] // sh) * self.ow + nx[p, t] // sw
        tap = ((c[p] % per_group) * (self.kh * self.kw) + t) * node.groups + group
        values = self.columns.index_select(0, tap).mul_(e[p, None])  # (Q, cout_g)
        out.view(-1).index_add_(0, (first[:, None] + self.plane).reshape(-1), values.reshape(-1))


class _DenseFan:
    """Columns of x @ W over the last axis: input unit (prefix, i) reaches output (prefix, :)
    with weight row W[i]."""

    def __init__(self, node: MatMul):
        self.weight = node.weight
        self.taps = self.outputs = node.weight.shape[1]

    def mac_cost(self, dtype: torch.dtype, device: torch.device) -> float:
        return 1.0  # (a dense layer's product is as wide as its outputs)

    def has_dense_columns(self, device: torch.device) -> bool:
        """Whether refill adds the columns by `add_by_product`: on CPU (always cheaper there)."""
        return device.type == "cpu"

    def dense_columns(self) -> torch.Tensor:
        """The weight: its rows are the columns."""
        return self.weight

    def add(self, out: torch.Tensor, row: torch.Tensor, u: torch.Tensor, e: torch.Tensor) -> None:
        """out[row] += each kinked unit u's weight row times its e."""
        n_in, n_out = self.weight.shape
        prefixes = out[0].numel() // n_out
        index = ((row * prefixes + u // n_in) * n_out)[:, None] + torch.arange(n_out, device=u.device)
        out.view(-1).index_add_(0, index.reshape(-1), (self.weight[u % n_in] * e[:, None]).reshape(-1))


def add_by_product(out: torch.Tensor, row: torch.Tensor, u: torch.Tensor, e: torch.Tensor, columns: torch.Tensor,
                   pair_bytes: int) -> None:
    """out[row] += e x the column of unit u, for every (row, u, e) (a fan's `add`), `row`
    ascending: the product of the sparse matrix of the e's (one row per knot and lead, one column
    per input unit of a lead) with the fan's `dense_columns` (input units, output units of a
    lead), `pair_bytes` of the sparse matrix at a time, each over the rows its pairs reach."""
    units, outputs = columns.shape
    flat = out.view(-1, outputs)
    leads = flat.shape[0] // out.shape[0]
    step = max(1, pair_bytes // SPARSE_PAIR_BYTES)
    for lo in range(0, row.shape[0], step):
        r, ui, ei = row[lo : lo + step], u[lo : lo + step], e[lo : lo + step]
        first, last = int(r[0]) * leads, (int(r[-1]) + 1) * leads
        at, col = r * leads + ui // units - first, ui % units
        if leads > 1:  # (the rows ascend by knot, not yet by lead)
            order = torch.argsort(at, stable=True)
            at, col, ei = at[order], col[order], ei[order]
        crow = torch.zeros(last - first + 1, dtype=torch.long, device=row.device)
        torch.cumsum(torch.bincount(at, minlength=last - first), 0, out=crow[1:])
        flat[first:last].addmm_(sparse_rows(crow, col, ei, units), columns)


def _fan_out(node, shape: tuple[int, ...]):
    """The columns of node i for an input of `shape` (every knot's), or None."""
    if isinstance(node, Conv) and node.weight.dim() == 4 and len(shape) >= 4:
        return _ConvFan(node, tuple(shape[1:]))
    if isinstance(node, MatMul) and not node.weight_left and node.weight.dim() == 2 and shape[-1] == node.weight.shape[0]:
        if node.bias is None or node.bias.numel() == node.weight.shape[1]:
            return _DenseFan(node)
    return None
