"""The knots of one pass (density.py) and their insertion: where the crossings a kink node found
become knots, every live value gets its exact interpolation there (when next read); and a pass's
knots cut into groups where they outgrow the memory budget."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable

import torch

from regionaudit.analysis._common import T_MERGE, sparse_rows, where_true, zero_tolerance
from regionaudit.analysis.refill import Kinked
from regionaudit.analysis.tail import MAX_STEP, TailFill, anchors
from regionaudit.ir import MaxPool

# At most this many old knots, a pass of mostly new knots interpolates by a matrix product with
# the old rows (measured: 1.4-1.9x faster than the gathers and lerp with 2-8 old knots, slower
# with 64)
PRODUCT_KNOTS = 16
# Output rows of the product with the old rows are written this many bytes at a time (`_mixed`)
MIX_CHUNK_BYTES = 1 << 21
# From one new knot per this many old ones, the live values get their rows by one sparse product
# on CPU (`Placement.interpolated`)
GATHER_RATIO = 4


class Overflow(Exception):
    """A pass's knots outgrew its share of the memory budget; carries the knots it would have had."""

    def __init__(self, t: torch.Tensor, seg: torch.Tensor):
        super().__init__("knot budget exceeded")
        self.t = t
        self.seg = seg


@dataclass
class Knots:
    """The state of one pass: every knot of every (sub-)segment in order, and what is known there."""

    t: torch.Tensor  # knot positions in [0, 1], the items' knots one after another
    seg: torch.Tensor  # the item each knot belongs to
    src: torch.Tensor  # the kink node that made each knot (-1: an end point)
    values: Live  # live node values at every knot
    mag: torch.Tensor  # largest |value| computed so far at each knot: the scale of its rounding
    frozen: torch.Tensor  # per item: reached --max-knots
    interior: torch.Tensor  # per item: knots inserted so far
    fill: TailFill | None = None  # set at the tail's kink node: values then hold the exact rows only
    kinked: Kinked | None = None  # the last insertion, where the layer after it may use it (refill.py)


@dataclass(frozen=True)
class Budget:
    max_knots: int | None  # --max-knots per segment
    cap_knots: int  # knots a pass (or a group of its knots) may hold in memory; it splits past half
    allow_overflow: bool  # a single segment may exceed cap_knots (it cannot be split further)


def pairs(k: Knots, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Which neighbouring knots form a pair to search (same item, not frozen), and each pair's
    rounding floor."""
    pair_ok = (k.seg[1:] == k.seg[:-1]) & ~k.frozen[k.seg[:-1]]
    floor = torch.maximum(k.mag[:-1], k.mag[1:]) * zero_tolerance(z.dtype)
    return pair_ok, floor


@dataclass
class Placement:
    """Where an insertion put the old and the new rows: the kept crossings, at fraction `s` of
    the interval after old knot `j`."""

    j: torch.Tensor
    s: torch.Tensor
    pos_old: torch.Tensor
    pos_new: torch.Tensor
    exact: torch.Tensor | None = None  # which new rows got values (None: all; see tail.py)
    _plan: tuple | None = field(default=None, init=False, repr=False, compare=False)  # `interpolated`'s, made at its first call
    _mix: torch.Tensor | None = field(default=None, init=False, repr=False, compare=False)  # `_mixing`'s weights, likewise
    _ends: tuple | None = field(default=None, init=False, repr=False, compare=False)  # `_everywhere`'s, likewise

    @staticmethod
    def of(j: torch.Tensor, s: torch.Tensor, n_knots: int, exact: torch.Tensor | None = None) -> "Placement":
        """The placement of new knots (j, s), sorted by j, among n_knots old ones."""
        old_rows = torch.arange(n_knots, device=j.device)
        new_rows = j + 1 + torch.arange(j.shape[0], device=j.device)
        return Placement(j, s, old_rows + torch.searchsorted(j, old_rows), new_rows, exact)

    def interpolate(self, v: torch.Tensor) -> torch.Tensor:
        """The new rows of v (old rows only): exact, v being affine between neighbouring knots."""
        w = self.s.to(v.dtype).reshape(-1, *([1] * (v.dim() - 1)))
        return torch.lerp(v.index_select(0, self.j), v.index_select(0, self.j + 1), w)

    def interpolated(self, v: torch.Tensor) -> torch.Tensor:
        """All rows of v (old rows only) in knot order: `merge(v, interpolate(v))`, on CPU in one
        product with the sparse matrix of each row's weights over the old rows (`weighted_rows`),
        which writes each row once: an old row is itself times 1 (0 + 1 x v: equal, a -0.0 coming
        back as 0.0, which no crossing test tells apart), a new one (1 - s) v_j + s v_j+1, whose
        last digit may differ from lerp's (measured alone: 1.5-1.8x faster than the gathers, lerp
        and placing with a new row per 7-100 old ones; in the pass, with fewer new rows than one
        per GATHER_RATIO old ones, no faster on the CIFAR nets and up to 5 % slower on others)."""
        if v.device.type != "cpu":
            return self.merge(v, self.interpolate(v))
        if self._plan is None:
            self._plan = self._gather_plan()
        crow, index, weights = self._plan
        flat = v.reshape(v.shape[0], math.prod(v.shape[1:]))
        return weighted_rows(crow, index, weights, flat).reshape(-1, *v.shape[1:])

    def _gather_plan(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(row starts, old rows, weights) of `interpolated`'s sparse matrix (`weighted_rows`):
        row r of the result sums weights x old rows index[crow[r]:crow[r + 1]]."""
        j, m, n_old, dev = self.j, self.j.shape[0], self.pos_old.shape[0], self.j.device
        sizes = torch.ones(n_old + m, dtype=torch.long, device=dev)
        sizes[self.pos_new] = 2
        crow = torch.zeros(n_old + m + 1, dtype=torch.long, device=dev)
        torch.cumsum(sizes, 0, out=crow[1:])
        index = torch.empty(n_old + 2 * m, dtype=torch.long, device=dev)
        weights = torch.empty(n_old + 2 * m, dtype=torch.float64, device=dev)
        at_old, at_new = crow[self.pos_old], crow[self.pos_new]
        index[at_old], weights[at_old] = torch.arange(n_old, device=dev), 1.0
        s = self.s.to(torch.float64)
        index[at_new], index[at_new + 1] = j, j + 1
        weights[at_new], weights[at_new + 1] = 1 - s, s
        return crow, index, weights

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        """All rows of v (old rows only) in knot order, the new ones interpolated, by the fastest
        of four ways for the placement's share of new rows. Each interpolates once and places
        both row sets: n + 4m row copies, the pass being memory-bound. With mostly new rows,
        interpolating every row (an old row between itself and itself, weight 0: the same value)
        takes 3 (n + m) instead (on a GPU; on CPU such a pass is a product). On CPU, from a new
        row per GATHER_RATIO old ones, one sparse product writes every row once
        (`interpolated`)."""
        n_old, m = self.pos_old.shape[0], self.j.shape[0]
        everywhere = m > 2 * n_old
        if everywhere and n_old <= PRODUCT_KNOTS:  # rows of (1 - w, w) at (left, right): one pass
            return _mixed(self._mixing(), v.reshape(n_old, -1)).reshape(-1, *v.shape[1:])
        if v.device.type == "cpu" and GATHER_RATIO * m >= n_old:
            return self.interpolated(v)
        if everywhere:
            left, right, weight = self._everywhere()
            shape = (-1, *([1] * (v.dim() - 1)))
            return torch.lerp(v.index_select(0, left), v.index_select(0, right), weight.to(v.dtype).reshape(shape))
        return self.merge(v, self.interpolate(v))

    def add_to(self, out: torch.Tensor, v: torch.Tensor) -> bool:
        """out += apply(v), on CPU, without making apply(v): the old rows of v added where they
        lie in out, the new rows made alone as `apply` makes them (the sparse product, or the
        interpolation) and added where they lie. Each row of out is read and written once, instead
        of apply(v) written whole and read back (a residual sum of a skip held across an insertion:
        2-2.5x faster, the same sums). False where apply would multiply by its mixing weights, or
        off CPU: the caller then adds apply(v)."""
        n_old, m = self.pos_old.shape[0], self.j.shape[0]
        if v.device.type != "cpu" or (m > 2 * n_old and n_old <= PRODUCT_KNOTS):
            return False
        if GATHER_RATIO * m >= n_old:  # (`interpolated`'s bags of the new rows)
            new = _gathered(v.reshape(n_old, -1), self.j, self.j + 1, self.s.to(torch.float64))
        else:
            new = self.interpolate(v)
        flat = out.view(out.shape[0], math.prod(out.shape[1:]))
        flat.index_add_(0, self.pos_old, v.reshape(n_old, flat.shape[1]))
        flat.index_add_(0, self.pos_new, new.reshape(m, flat.shape[1]))
        return True

    def _mixing(self) -> torch.Tensor:
        """Every row's weights over the old rows, (1 - w, w) at (left, right): `apply` as a product."""
        if self._mix is None:
            left, right, weight = self._everywhere()
            rows = torch.arange(left.shape[0], device=left.device)
            self._mix = torch.zeros(left.shape[0], self.pos_old.shape[0], dtype=torch.float64, device=left.device)
            self._mix.index_put_((rows, left), 1 - weight)
            self._mix.index_put_((rows, right), weight, accumulate=True)
        return self._mix

    def rows_of(self, v: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Rows `index` of `apply(v)`, made alone, each written once: by the product with their
        weights over few old rows, a sparse product on CPU, or an interpolation (an old row
        between itself and itself, weight 0: the same value)."""
        n_old = self.pos_old.shape[0]
        flat = v.reshape(n_old, -1)
        if n_old <= PRODUCT_KNOTS:
            out = _mixed(self._mixing().index_select(0, index), flat)
        else:
            left, right, weight = self._everywhere()
            left, right, w = left[index], right[index], weight[index]
            if v.device.type == "cpu":
                out = _gathered(flat, left, right, w)
            else:
                out = torch.lerp(flat.index_select(0, left), flat.index_select(0, right), w.to(v.dtype)[:, None])
        return out.reshape(-1, *v.shape[1:])

    def entries_of(self, v: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """`apply(v)` flattened to rows of units, at (rows, cols) alone."""
        left, right, weight = self._everywhere()
        flat = v.reshape(v.shape[0], -1)
        return torch.lerp(flat[left[rows], cols], flat[right[rows], cols], weight[rows].to(v.dtype))

    def _everywhere(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every row's left and right old row and the weight of the right one (made once for all
        the values the placement is applied to)."""
        if self._ends is None:
            old_rows = torch.arange(self.pos_old.shape[0], device=self.j.device)
            zeros = torch.zeros(old_rows.shape[0], dtype=torch.float64, device=self.j.device)
            self._ends = (self.merge(old_rows, self.j), self.merge(old_rows, self.j + 1),
                          self.merge(zeros, self.s.to(torch.float64)))
        return self._ends

    def then(self, later: "Placement") -> "Placement":
        """This placement followed by `later`, which places new knots among the rows this one
        makes: one placement among this one's old rows. A knot of `later` between rows r and r + 1
        lies in the old interval of row r (every old row is still there), at the fraction of it
        that its own fraction of the way from r to r + 1 gives (float64: the weights of a convex
        combination, without cancellation)."""
        n_old, dev = self.pos_old.shape[0], self.j.device
        n = n_old + self.j.shape[0]
        interval = torch.empty(n, dtype=torch.long, device=dev)  # each row's old interval ...
        frac = torch.zeros(n, dtype=torch.float64, device=dev)  # ... and its fraction of it
        interval[self.pos_old] = torch.arange(n_old, device=dev)
        interval[self.pos_new] = self.j
        frac[self.pos_new] = self.s.to(torch.float64)
        j, s = later.j, later.s.to(torch.float64)
        new_j = interval[j]
        right = torch.where(interval[j + 1] == new_j, frac[j + 1], torch.ones_like(s))
        new_s = torch.lerp(frac[j], right, s)
        return Placement(
            j=torch.cat([self.j, new_j]),
            s=torch.cat([self.s.to(torch.float64), new_s]),
            pos_old=later.pos_old[self.pos_old],
            pos_new=torch.cat([later.pos_old[self.pos_new], later.pos_new]),
        )

    def merge(self, old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
        out = old.new_empty((old.shape[0] + new.shape[0], *old.shape[1:]))
        # index_copy_ of flat rows: 3-4x faster on CPU than an indexed assignment, or than
        # index_copy_ of rows that are themselves tensors
        flat = out.view(out.shape[0], math.prod(out.shape[1:]))
        flat.index_copy_(0, self.pos_old, old.reshape(old.shape[0], flat.shape[1]))
        flat.index_copy_(0, self.pos_new, new.reshape(new.shape[0], flat.shape[1]))
        return out


def _gathered(flat: torch.Tensor, left: torch.Tensor, right: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """(1 - w) flat[left] + w flat[right], row by row, by `weighted_rows` (the rows `interpolated`
    makes for new rows: the same sums); w float64."""
    pair = torch.stack([left, right], 1).reshape(-1)
    weights = torch.stack([1 - w, w], 1).reshape(-1)
    crow = torch.arange(0, pair.shape[0] + 1, 2, device=flat.device)
    return weighted_rows(crow, pair, weights, flat)


def weighted_rows(crow: torch.Tensor, index: torch.Tensor, weights: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
    """Row r: the sum of weights[k] x flat[index[k]] over k in crow[r]..crow[r + 1] - 1 (weights
    float64), as the product of that sparse matrix with flat, written into a fresh tensor (beta
    0: its contents are not read). MKL's sparse product writes each row once, where a weighted
    gather (`F.embedding_bag`) first zeroes its whole output and then adds into it: 2.3x faster
    at 3 566 rows x 576 from 450 old rows, the sums fused (the last digit of a new row may
    differ)."""
    matrix = sparse_rows(crow, index, weights.to(flat.dtype), flat.shape[0])
    out = flat.new_empty(matrix.shape[0], flat.shape[1])
    return torch.addmm(out, matrix, flat, beta=0, out=out)


def _mixed(weights: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """weights (float64) @ rows, a block of output rows of about MIX_CHUNK_BYTES at a time: with
    so few old rows the product only writes its output, and MKL writes a whole large one about
    1.4x slower than in blocks that stay in cache (measured with 4-16 old rows, 20-160 MB out)."""
    weights = weights.to(rows.dtype)
    out = rows.new_empty(weights.shape[0], rows.shape[1])
    if out.device.type != "cpu":
        return torch.mm(weights, rows, out=out)
    step = max(1, MIX_CHUNK_BYTES // max(1, rows.shape[1] * rows.element_size()))
    for lo in range(0, weights.shape[0], step):
        torch.mm(weights[lo : lo + step], rows, out=out[lo : lo + step])
    return out


class Live:
    """The live node values of a pass, by node: a value read at every knot, or one deferred since
    the insertion after which it was not yet read. A deferred value keeps its rows at the knots
    it had and the placement of every knot inserted since among them (composed at each insertion,
    shared by the values deferred together); it gets its rows when read, in one pass however many
    insertions it waited through. A skip connection held across the kink nodes of a residual block
    is then written once, where the block's sum reads it, instead of at each of them; on CPU the
    sum adds it into its other term where its rows lie, and it is never written whole (`add_into`).

    A deferred value may also wait with an elementwise function to apply (`defer_through`): the
    output of a kink node whose next layer reads only some of its rows and entries (`part`,
    refill.py) is then made at those alone; and so may a max pool of it (`defer_pooled`), whose
    entries are each window's maximum over its cells alone.
    """

    def __init__(self, values: dict[int, torch.Tensor] | None = None):
        self._read: dict[int, torch.Tensor] = dict(values or {})
        # old rows, the knots placed since, and the elementwise function to apply (or None)
        self._deferred: dict[int, tuple[torch.Tensor, _Since, Callable | None]] = {}

    def __getitem__(self, q: int) -> torch.Tensor:
        if q not in self._read:
            rows, since, fn = self._deferred.pop(q)
            old = fn.at_rows_held() if isinstance(fn, Pooled) else None
            if old is not None:  # made at the rows held: the others alone, where there are others
                placed = since.placed
                self._read[q] = placed.merge(old, fn(placed.rows_of(rows, placed.pos_new))) if placed.pos_new.numel() else old
            else:
                v = since.placed.apply(rows)  # (a new tensor: fn may overwrite it)
                self._read[q] = v if fn is None else fn(v)
        return self._read[q]

    def __setitem__(self, q: int, v: torch.Tensor) -> None:
        self._deferred.pop(q, None)
        self._read[q] = v

    def __delitem__(self, q: int) -> None:
        if self._read.pop(q, None) is None:
            del self._deferred[q]

    def __contains__(self, q: int) -> bool:
        return q in self._read or q in self._deferred

    def __iter__(self):
        return iter([*self._read, *self._deferred])

    def held(self) -> dict[int, torch.Tensor]:
        """Every tensor held, the deferred values' old rows included, none made (for
        `_common.overwritable`)."""
        return {**self._read, **{q: rows for q, (rows, _, _) in self._deferred.items()}}

    def items(self) -> list[tuple[int, torch.Tensor]]:
        """Every value at every knot (the deferred ones made now)."""
        return [(q, self[q]) for q in list(self)]

    def insert(self, placed: Placement) -> None:
        """New knots, placed among the old ones: every value is deferred."""
        for since in {since for _, since, _ in self._deferred.values()}:
            since.placed = since.placed.then(placed)
        if self._read:
            since = _Since(placed)
            self._deferred.update({q: (v, since, None) for q, v in self._read.items()})
            self._read = {}

    def defer_through(self, i: int, q: int, fn: Callable[[torch.Tensor], torch.Tensor]) -> bool:
        """Value i is fn of value q, which is read nowhere else: where q is deferred, i waits as
        well, to be made whole when read, or in part (`part`). fn applies the same numbers to every
        unit (it runs on any selection of entries) and may overwrite its argument. False where q is
        not deferred (the caller then computes i)."""
        if q not in self._deferred or self._deferred[q][2] is not None:
            return False
        rows, since, _ = self._deferred.pop(q)
        self._deferred[i] = (rows, since, fn)
        return True

    def defer_pooled(self, i: int, q: int, pool: MaxPool, old: torch.Tensor | None = None) -> bool:
        """Value i is the max pool `pool` of value q, which is read nowhere else: where q is
        deferred, i waits as well, to be made whole when read, or in part (`part`: a pooled
        entry from its window's cells alone); `old`, where known, is i at q's rows held. False
        where q is not deferred."""
        if q not in self._deferred:
            return False
        rows, since, fn = self._deferred.pop(q)
        self._deferred[i] = (rows, since, Pooled(pool, fn, tuple(pool.shape), old))
        return True

    def defer_reshaped(self, i: int, q: int, shape: tuple[int, ...]) -> bool:
        """Value i is value q reshaped (the same entries in the same order), and q is read
        nowhere else: where q is deferred, i waits in its place, its old rows a view of q's (or,
        where q is pooled when made, the pooled rows reshaped then). False where q is not
        deferred (the caller then computes i)."""
        if q not in self._deferred:
            return False
        rows, since, fn = self._deferred.pop(q)
        if isinstance(fn, Pooled):
            self._deferred[i] = (rows, since, replace(fn, shape=tuple(shape)))
        else:
            self._deferred[i] = (rows.reshape(rows.shape[0], *shape), since, fn)
        return True

    def add_into(self, out: torch.Tensor, q: int) -> bool:
        """out += value q at every knot, where q waits with no function to apply and its
        placement adds in place (`Placement.add_to`): q is never made whole. False otherwise
        (nothing is added)."""
        if q not in self._deferred:
            return False
        rows, since, fn = self._deferred[q]
        if fn is not None or tuple(rows.shape[1:]) != tuple(out.shape[1:]) or rows.dtype != out.dtype:
            return False
        return since.placed.add_to(out, rows)

    def deferred(self, q: int) -> bool:
        """Whether value q waits to be made (`part` then reads some of it without the rest)."""
        return q in self._deferred

    def part(self, q: int) -> "Part":
        """Value q, to be read in some rows or entries."""
        if q in self._read:
            return Part.of(self._read[q])
        rows, since, fn = self._deferred[q]
        n = since.placed.pos_old.shape[0] + since.placed.j.shape[0]
        shape = fn.shape if isinstance(fn, Pooled) else tuple(rows.shape[1:])
        return Part((n, *shape), rows.dtype, since.placed, rows, fn)


@dataclass(frozen=True)
class Pooled:
    """What a deferred value applies when read, where it is a max pool's output: the pool of
    `inner` (an elementwise function, or None) of the rows made, reshaped to `shape`. Its entries
    are read from their windows' cells alone (`entries`)."""

    pool: MaxPool
    inner: Callable | None
    shape: tuple[int, ...]
    old: torch.Tensor | None = None  # the value at the rows held, where it was made with them

    def at_rows_held(self) -> torch.Tensor | None:
        """`old` in this value's shape, or None where it was not made with the rows held."""
        return None if self.old is None else self.old.reshape(self.old.shape[0], *self.shape)

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        x = v if self.inner is None else self.inner(v)
        return self.pool.forward([x]).reshape(v.shape[0], *self.shape)

    def entries(self, placed: Placement, rows_held: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """The pooled value flattened to (knot, unit), at (rows, cols): each window's maximum
        over its cells' values alone (padding is never one)."""
        cells, pad = self.pool.window_cells(rows_held[:1], cols)  # (R, k)
        v = placed.entries_of(rows_held, rows[:, None].expand_as(cells).reshape(-1), cells.reshape(-1)).reshape(cells.shape)
        if self.inner is not None:
            v = self.inner(v)
        return v.masked_fill_(pad, -math.inf).amax(1)


@dataclass
class Part:
    """A live value read in some rows or some entries (of its rows flattened to units) without
    making the others: those of a deferred value are interpolated alone."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    placed: Placement | None  # None: `rows_held` is the value at every knot, else its old rows
    rows_held: torch.Tensor
    fn: Callable | None = None  # applied to what is read (`Live.defer_through`)

    @staticmethod
    def of(v: torch.Tensor) -> "Part":
        return Part(tuple(v.shape), v.dtype, None, v)

    def held_at(self, placed: Placement) -> bool:
        """Whether the rows held are the value at the old knots of `placed`: it was deferred at
        that very insertion (a later one would have composed its placement anew)."""
        return self.placed is placed

    def at_old_knots(self, placed: Placement, spare: bool = False) -> torch.Tensor:
        """The value at the old knots of `placed`: the rows held where `held_at`, with no
        interpolation (a function, which may overwrite its argument, applied to a copy of them,
        or to them where they are `spare`: read nowhere after)."""
        if self.held_at(placed):
            if self.fn is None:
                return self.rows_held
            if isinstance(self.fn, Pooled) and self.fn.old is not None:
                return self.fn.at_rows_held()
            return self.fn(self.rows_held if spare else self.rows_held.clone())
        return self.rows(placed.pos_old)

    def rows(self, index: torch.Tensor) -> torch.Tensor:
        """The value at knots `index`."""
        if self.placed is None:
            return self.rows_held.index_select(0, index)
        v = self.placed.rows_of(self.rows_held, index)
        return v if self.fn is None else self.fn(v)

    def cells(self, index: tuple[slice, ...]) -> torch.Tensor:
        """The value at every knot, its trailing axes sliced by `index` (the cells a strided
        layer reads): those of a deferred value interpolated alone (a pooled one made whole)."""
        if isinstance(self.fn, Pooled):
            return self.fn(self.placed.apply(self.rows_held))[(..., *index)]
        v = self.rows_held[(..., *index)]
        if self.placed is None:
            return v
        v = self.placed.apply(v)  # (a new tensor: fn may overwrite it)
        return v if self.fn is None else self.fn(v)

    def entries(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """The value flattened to (knot, unit), at (rows, cols)."""
        if self.placed is None:
            return self.rows_held.reshape(self.shape[0], -1)[rows, cols]
        if isinstance(self.fn, Pooled):
            return self.fn.entries(self.placed, self.rows_held, rows, cols)
        v = self.placed.entries_of(self.rows_held, rows, cols)
        return v if self.fn is None else self.fn(v)


@dataclass(eq=False)
class _Since:
    """The placement of every knot inserted since some values were deferred, among their old rows:
    one object for all of them, so that each insertion composes it once."""

    placed: Placement


def insert(
    k: Knots, src: int | torch.Tensor, j: torch.Tensor, s: torch.Tensor, budget: Budget, step: int = 1, row_cost: float = 0.0,
    bends: tuple | None = None,
) -> Placement | None:
    """Insert the crossings found at kink node `src` (or each at its own, a tensor; at fraction
    `s` of the interval after knot `j`) as knots, every live value getting its exact interpolation
    there when next read (`Live`). Of crossings closer than T_MERGE the first in this order is
    kept. Where knots were inserted, every live value read is then a new tensor of the pass's own,
    and the placement says where the rows went; None where none were. With `step` > 1 only every step-th new knot of an
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
        raise Overflow(torch.cat([t, ts]).sort().values, seg)  # with the crossings it would add
    if frozen is not None:
        k.frozen |= frozen
    if m == 0:
        return None
    k.interior += torch.bincount(seg[j], minlength=k.interior.shape[0])
    placed = Placement.of(j, s, n_knots, exact)
    k.kinked = None if bends is None or exact is not None else Kinked(bends[0], placed, *bends[1:])
    k.t = placed.merge(t, ts)
    k.src = placed.merge(k.src, src)
    k.seg = placed.merge(seg, seg[j])
    k.mag = placed.merge(k.mag, torch.maximum(k.mag[j], k.mag[j + 1]))
    k.values.insert(placed if exact is None else Placement.of(j[exact], s[exact], n_knots))
    return placed


def groups(k: Knots, wanted: int, budget: Budget) -> list[tuple[int, int]] | None:
    """Row ranges [lo, hi) that cut the knots k, which would have grown to `wanted`, into groups
    of about a quarter of the budget's splitting point each; None where k is a single pair.

    A cut between two items needs nothing; a cut inside an item is at a knot made by a kink node,
    which both groups keep (one ends there, the next starts there): the knot stays exact and
    the join needs no check (`joins.stitch`).
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


def rows(k: Knots, lo: int, hi: int) -> Knots:
    """Rows [lo, hi) of the knots as a pass state of their own (copies: the group may overwrite
    them); the per-item counters stay shared."""
    return Knots(
        t=k.t[lo:hi],
        seg=k.seg[lo:hi],
        src=k.src[lo:hi],
        values=Live({q: v[lo:hi].clone() for q, v in k.values.items()}),
        mag=k.mag[lo:hi],
        frozen=k.frozen,
        interior=k.interior,
    )
