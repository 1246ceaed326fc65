"""Where kink nodes cross between neighbouring knots, in closed form (DESIGN.md, "Exact 1-D
analysis"): everything up to a kink node is affine between two knots, so each unit's input is a
line in the fraction s of the way, and so is each max-pool candidate.

Each finder takes a kink node's input z at every knot (N, ...), which neighbouring pairs to
search (`pair_ok`, (N-1,)) and each pair's rounding floor (`floor`, (N-1,)), and returns the pairs
j and the fractions s of their crossings.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from regionaudit.analysis._common import readers, where_true
from regionaudit.ir import LeakyRelu, MaxPool, Network, UnitKink, WindowMax
from regionaudit.ir.compare import sign_bits


# `nonzero` scans only the rows holding a True where fewer than 1 in this many do (copying them
# out costs more than scanning the others as words), and leaves a mask of at most SMALL_MASK
# entries to torch (its few calls cost more there: measured crossover 0.1-0.2 M entries)
FEW_ROWS = 4
SMALL_MASK = 1 << 17


def nonzero(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) of the True entries of a 2-D mask, row-major, as `nonzero` finds them but
    about 10x faster on the usual sparse mask of a scan, whose cost is torch's nonzero over every
    byte. The mask is read as 8-byte words: nonzero finds the words holding any True (an eighth
    of the entries), then the bytes within those. Where few rows hold any (found by a byte-wise
    max), only those rows are scanned. A small mask, or one on a GPU, goes to torch's nonzero as it is."""
    n_rows, n_cols = mask.shape
    if mask.numel() <= SMALL_MASK or mask.device.type != "cpu":  # on a GPU, each nonzero waits for it
        return mask.nonzero(as_tuple=True)
    any_rows = mask.view(torch.uint8).amax(1).nonzero().squeeze(1)
    few = any_rows.numel() * FEW_ROWS < n_rows
    flat = (mask.index_select(0, any_rows) if few else mask.contiguous()).reshape(-1)
    whole = flat.numel() // 8 * 8
    if flat.storage_offset() % 8:  # (a view whose bytes do not start a word)
        flat = flat.clone()
    words = flat[:whole].view(torch.uint8).view(torch.int64).nonzero().squeeze(1)
    k, byte = flat[:whole].view(-1, 8).index_select(0, words).nonzero(as_tuple=True)
    index = torch.cat([words[k] * 8 + byte, flat[whole:].nonzero().squeeze(1) + whole])
    rows, cols = index // n_cols, index % n_cols
    return (any_rows[rows] if few else rows), cols


def relu_crossings(z: torch.Tensor, pair_ok: torch.Tensor, floor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs (j, j+1) where a unit changes sign strictly inside; fraction s of the way there."""
    j, _, a, b = unit_crossings(z, pair_ok, floor)
    return j, a / (a - b)


def unit_crossings(
    z: torch.Tensor, pair_ok: torch.Tensor, floor: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pairs (j, j+1) where a unit changes sign strictly inside: j, the unit's column, and its
    values a and b at the two knots.

    A unit within `floor[j]` (rounding) of zero at both knots is zero in between, not crossing:
    the opposite signs of its noise would otherwise put a knot anywhere in the pair. The scan
    over all units compares one-byte signs; only the few candidates found are read in full.
    """
    n = z.shape[0]
    z = z.reshape(n, -1)
    neg = sign_bits(z)  # (-0.0 too: its pairs fail the test below, as zeros do)
    return _sign_changes(neg, lambda rows, cols: z[rows, cols], pair_ok, floor)


def kink_crossings(
    node: UnitKink, z: torch.Tensor, pair_ok: torch.Tensor, floor: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """`unit_crossings` of the node's offsets at its input z, read without writing them: their
    signs (`below`), then the candidates' offsets alone."""
    return _sign_changes(node.below(z), lambda rows, cols: node.offsets_at(z, rows, cols), pair_ok, floor)


def _sign_changes(neg: torch.Tensor, values_at, pair_ok: torch.Tensor, floor: torch.Tensor):
    j, u = nonzero(neg[:-1] != neg[1:])  # a sign change, or a zero at one end
    a, b = values_at(j, u), values_at(j + 1, u)
    real = _crosses_zero(a, b, floor[j]) & pair_ok[j]
    return where_true(real, j, u, a, b)


def _crosses_zero(a: torch.Tensor, b: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
    """Strictly opposite signs, compared as signs: the product of two values below about 1e-162
    underflows to zero and would hide the crossing."""
    opposite = ((a < 0) & (b > 0)) | ((a > 0) & (b < 0))
    return opposite & (torch.maximum(a.abs(), b.abs()) > floor)


@dataclass
class Envelope:
    """The upper envelope of R rows of k lines c0 + s (c1 - c0) over 0 < s < 1: each row's leader
    just after s = 0, and every breakpoint (row, s, the leader before and after it), each row's
    in increasing s."""

    first: torch.Tensor  # (R,)
    row: torch.Tensor
    s: torch.Tensor
    before: torch.Tensor
    after: torch.Tensor


def envelope(c0: torch.Tensor, c1: torch.Tensor, floor: torch.Tensor) -> Envelope:
    """Trace the envelope of the lines through c0 and c1 (R, k; -inf: no candidate): from the
    left end take the leader (ties: the steeper), find the earliest time any steeper candidate
    overtakes it, move on, until the right end. A candidate within `floor` (R,) of the leader at
    both ends is the same line computed along another path: it never overtakes. One step per
    breakpoint of the row with the most, for all rows at once (at most k)."""
    fin = torch.isfinite(c0) & torch.isfinite(c1)
    ninf = torch.tensor(-torch.inf, dtype=c0.dtype, device=c0.device)
    pinf = torch.tensor(torch.inf, dtype=c0.dtype, device=c0.device)
    a = torch.where(fin, c0, ninf)
    dd = torch.where(fin, c1 - c0, torch.zeros((), dtype=c0.dtype, device=c0.device))
    floor = floor[:, None]
    m0 = a.max(-1, keepdim=True).values
    leader = torch.where(a == m0, dd, ninf).argmax(-1, keepdim=True)  # (R, 1)
    first = leader[:, 0]
    s_cur = a.new_zeros(a.shape[0])
    rows = torch.arange(a.shape[0], device=a.device)
    found: list[tuple[torch.Tensor, ...]] = []
    for _ in range(a.shape[-1]):
        if rows.numel() == 0:
            break
        aL, dL = a.gather(-1, leader), dd.gather(-1, leader)
        same = ((a - aL).abs() <= floor) & ((a + dd - aL - dL).abs() <= floor)
        over = fin & (dd > dL) & ~same
        sx = torch.where(over, (aL - a) / torch.where(over, dd - dL, 1.0), pinf)
        sx = torch.maximum(sx, s_cur[:, None])
        s_min = sx.min(-1).values
        cont = s_min < 1
        nxt = torch.where(over & (sx <= s_min[:, None]), dd, ninf).argmax(-1, keepdim=True)
        rows, s_cur, before, leader, a, dd, fin, floor = where_true(cont, rows, s_min, leader, nxt, a, dd, fin, floor)
        found.append((rows, s_cur, before[:, 0], leader[:, 0]))
    row, s, before, after = (torch.cat(x) for x in zip(*found)) if found else (first[:0], c0.new_zeros(0), first[:0], first[:0])
    o = torch.sort(row, stable=True).indices  # by row; each row's breakpoints came in order of s
    return Envelope(first, row[o], s[o], before[o], after[o])


def maxpool_crossings(
    node: MaxPool, z: torch.Tensor, pair_ok: torch.Tensor, floor: torch.Tensor, am: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Breakpoints of every window's upper envelope strictly inside each pair of knots (j, s),
    and the traced (pair, window)s: the only ones that may bend in their pair.

    A window whose (first) argmax is the same line L at both knots has no breakpoint: the upper
    envelope is convex, at least L, and equal to L at both ends, hence equal to L in between. Only
    the other windows are traced (`envelope`). `am` is `node.winners(z)` where the caller has it.
    """
    am = node.winners(z) if am is None else am  # (N, W)
    p, w = nonzero(am[:-1] != am[1:])
    ok = pair_ok[p]
    p, w = p[ok], w[ok]
    if p.numel() == 0:
        return p, z.new_zeros(0), p, w
    # only the changed windows' candidates, at both knots (a copy of every window at every knot
    # costs more than the pooling itself)
    c0, c1 = node.candidates_at(z, torch.cat([p, p + 1]), torch.cat([w, w])).split(p.shape[0])  # (R, k)
    env = envelope(c0, c1, floor[p])
    return p[env.row], env.s, p, w


def pooled_relus(network: Network, order: list[int]) -> dict[int, int]:
    """{ReLU: max pool} for each max pool right after a ReLU or LeakyReLU (one slope >= 0:
    increasing) that it alone reads, and that is all it reads: the pool's winner changes can be
    found with the ReLU's crossings (`relu_pool_crossings`)."""
    out = {}
    for pos, q in enumerate(order[:-1]):
        relu, i = network.nodes[q], order[pos + 1]
        pool = network.nodes[i]
        if not isinstance(relu, LeakyRelu) or relu.scalar_slope() is None or relu.scalar_slope() < 0:
            continue
        if not isinstance(pool, MaxPool) or isinstance(pool, WindowMax) or tuple(pool.inputs) != (q,):
            continue
        if network.output != q and readers(network, order, q) == [i]:
            out[q] = i
    return out


@dataclass
class PoolCrossings:
    """What a ReLU followed by a max pool does between neighbouring knots, found from the ReLU's
    input alone (`relu_pool_crossings`): the knots, each with the node that makes it, and every
    kink of the pooled output: window `window` changes its slope d pool / ds by `slope_change`
    at fraction s of pair j."""

    j: torch.Tensor
    s: torch.Tensor
    by_pool: torch.Tensor  # bool: a winner change (else a ReLU crossing)
    kink_j: torch.Tensor
    kink_s: torch.Tensor
    window: torch.Tensor
    slope_change: torch.Tensor


def relu_pool_crossings(
    relu: LeakyRelu, pool: MaxPool, z: torch.Tensor, pair_ok: torch.Tensor, floor: torch.Tensor, kinks: bool = True,
    am: torch.Tensor | None = None,
) -> PoolCrossings:
    """The knots of ReLU (one slope alpha >= 0) then max pool between neighbouring knots, from the
    ReLU's input z, without the ReLU's output at the new knots.

    The ReLU is increasing, so a window's winner is the first maximum of its z lines, and its
    pooled output is relu(E), E the upper envelope of those lines. The knots are every unit's
    sign change (the ReLU's) and E's breakpoints where the winner's ReLU output is not flat at 0
    (the pool's: with alpha = 0 where E > 0; all of them otherwise), as ReLU then max pool finds
    them one after the other. The pooled output bends at E's breakpoints and where E crosses 0:
    a window whose first argmax is the same line L at both knots follows L throughout (see
    `maxpool_crossings`), the others are traced. Without `kinks` the pooled output's kinks are
    left out (empty): only the knots. `am` is `pool.winners(z)` where the caller has it.
    """
    alpha = relu.scalar_slope()
    n = z.shape[0]
    zf = z.reshape(n, -1)
    j, u, a, b = unit_crossings(zf, pair_ok, floor)
    am = pool.winners(z) if am is None else am  # (N, W), of z: the same winners as of relu(z) wherever E > 0
    cells = pool.cells(z)  # (W, k)
    changed = (am[:-1] != am[1:]) & pair_ok[:, None]

    # windows that keep their leader L: a kink where L crosses zero (among the units' crossings)
    cm = cw = j[:0]
    if kinks:
        cw, cm = _windows_holding(cells, u)  # (crossing, window) pairs: the windows of each unit
        cw_j = j[cm]
        keep = ~changed[cw_j, cw] & (cells[cw, am[cw_j, cw].long()].long() == u[cm])
        cm, cw = where_true(keep, cm, cw)
    bends = [(j[cm], a[cm] / (a[cm] - b[cm]), cw, (1 - alpha) * (b[cm] - a[cm]).abs())]

    knots = [(j, a / (a - b), torch.zeros_like(j, dtype=torch.bool))]
    p, w = nonzero(changed)
    if p.numel():
        c0, c1 = pool.candidates_at(z, torch.cat([p, p + 1]), torch.cat([w, w])).split(p.shape[0])  # (R, k)
        env = envelope(c0, c1, floor[p])
        r, sb = env.row, env.s
        level = c0[r, env.before] + sb * (c1[r, env.before] - c0[r, env.before])
        kept = level > 0 if alpha == 0 else torch.ones_like(r, dtype=torch.bool)
        r_kept, s_kept = where_true(kept, r, sb)
        knots.append((p[r_kept], s_kept, torch.ones_like(r_kept, dtype=torch.bool)))
        if kinks:
            row, s_at, slope = _pooled_slopes(env, c0, c1, floor[p], alpha)
            change = slope[1:] - slope[:-1]
            inner = (row[1:] == row[:-1]) & (change != 0)
            row_in, s_in, change_in = where_true(inner, row[1:], s_at[1:], change)
            bends.append((p[row_in], s_in, w[row_in], change_in))
    kj, ks, kb = (torch.cat(x) for x in zip(*knots))
    cj, cs, cw, cd = (torch.cat(x) for x in zip(*bends))
    return PoolCrossings(kj, ks, kb, cj, cs, cw, cd)


def _pooled_slopes(env: Envelope, c0: torch.Tensor, c1: torch.Tensor, floor: torch.Tensor, alpha: float):
    """The pieces of relu(E) in each traced row: (row, start, slope d/ds), sorted by row and
    start. E's pieces (a leader each) are cut where their leader crosses zero."""
    n_rows = c0.shape[0]
    row = torch.cat([torch.arange(n_rows, device=c0.device), env.row])
    start = torch.cat([c0.new_zeros(n_rows), env.s])
    lead = torch.cat([env.first, env.after])
    row, start, lead, end = _in_order(row, start, lead)
    v0, v1 = c0[row, lead], c1[row, lead]
    sz = v0 / (v0 - v1)
    cut = _crosses_zero(v0, v1, floor[row]) & (sz > start) & (sz < end)
    row_cut, s_cut, lead_cut = where_true(cut, row, sz, lead)
    row, start, lead, end = _in_order(torch.cat([row, row_cut]), torch.cat([start, s_cut]), torch.cat([lead, lead_cut]))
    v0, v1 = c0[row, lead], c1[row, lead]
    d = v1 - v0
    above = v0 + (start + end) / 2 * d > 0
    return row, start, torch.where(above, d, alpha * d)


def _in_order(row: torch.Tensor, start: torch.Tensor, lead: torch.Tensor):
    """Pieces sorted by row, then start; with each piece's end (the next one's start, or 1)."""
    o = torch.sort(2 * row.to(torch.float64) + start.to(torch.float64), stable=True).indices
    row, start, lead = row[o], start[o], lead[o]
    more = torch.cat([row[1:] == row[:-1], torch.zeros(1, dtype=torch.bool, device=row.device)])
    end = torch.where(more, torch.cat([start[1:], start.new_ones(1)]), torch.ones_like(start))
    return row, start, lead, end


def _windows_holding(cells: torch.Tensor, units: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (window, m) with window holding cell units[m] (cells: (W, k), -inf at padding)."""
    w_idx, k_idx = torch.isfinite(cells).nonzero(as_tuple=True)
    cell = cells[w_idx, k_idx].long()
    o = torch.sort(cell, stable=True).indices
    cell, w_idx = cell[o], w_idx[o]
    first = torch.searchsorted(cell, units)
    count = torch.searchsorted(cell, units, right=True) - first
    m = torch.repeat_interleave(torch.arange(units.shape[0], device=units.device), count)
    offset = torch.arange(m.shape[0], device=units.device) - torch.repeat_interleave(torch.cumsum(count, 0) - count, count)
    return w_idx[first[m] + offset], m
