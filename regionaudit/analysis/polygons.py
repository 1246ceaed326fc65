"""Convex polygons of a plane, batched and padded, and their splitting by affine functions: by a
line into its two sides, or into the cells of a maximum of affine candidates (slices.py). Each
edge is labelled with the kink node whose line made it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

BOX_LABEL = -1  # edge label of the box's own sides


@dataclass
class Polygons:
    """Convex polygons, padded: vertex k of polygon p is verts[p, k] for k < counts[p], in
    counter-clockwise order; labels[p, k] names what made the edge from vertex k to k + 1 (the
    id of a kink node, or BOX_LABEL). Coordinates are relative to the box centre."""

    verts: torch.Tensor  # (P, V, 2)
    counts: torch.Tensor  # (P,) long
    labels: torch.Tensor  # (P, V) long

    def __len__(self) -> int:
        return int(self.counts.shape[0])

    def take(self, idx: torch.Tensor) -> "Polygons":
        counts = self.counts[idx]
        width = int(counts.max()) if counts.numel() else 1
        return Polygons(self.verts[idx, :width], counts, self.labels[idx, :width])

    @staticmethod
    def cat(parts: list["Polygons"]) -> "Polygons":
        nonempty = [p for p in parts if len(p)]
        if not nonempty:
            return parts[0]
        parts = nonempty
        width = max(p.verts.shape[1] for p in parts)

        def pad(t: torch.Tensor, value) -> torch.Tensor:
            extra = width - t.shape[1]
            if extra == 0:
                return t
            return torch.cat([t, t.new_full((t.shape[0], extra, *t.shape[2:]), value)], 1)

        return Polygons(
            torch.cat([pad(p.verts, 0.0) for p in parts]),
            torch.cat([p.counts for p in parts]),
            torch.cat([pad(p.labels, BOX_LABEL) for p in parts]),
        )

    def valid(self) -> torch.Tensor:
        return torch.arange(self.verts.shape[1], device=self.counts.device) < self.counts[:, None]

    def next_vertex(self) -> torch.Tensor:
        """Each vertex slot's next vertex (P, V): the end of the edge it starts, wrapping round."""
        k = torch.arange(self.verts.shape[1], device=self.counts.device)
        return (k[None, :] + 1) % self.counts.clamp(min=1)[:, None]

    def vertex_means(self) -> torch.Tensor:
        """Each polygon's vertex mean (P, 2): a point inside it."""
        return (self.verts * self.valid()[..., None]).sum(1) / self.counts.clamp(min=1)[:, None]

    def _from_first(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each polygon's first vertex (P, 1, 2), its vertices and their next ones taken from it:
        a polygon far smaller than its distance from the box centre keeps its digits there (its
        shoelace in box coordinates had rounded a 2e-19 triangle to 0)."""
        first = self.verts[:, :1]
        v = self.verts - first
        return first, v, v.gather(1, self.next_vertex()[..., None].expand_as(v))

    def areas(self) -> torch.Tensor:
        """Shoelace areas (P,)."""
        _, v, w = self._from_first()
        cross = v[..., 0] * w[..., 1] - v[..., 1] * w[..., 0]
        return (cross * self.valid()).sum(1) / 2

    def perimeters(self) -> torch.Tensor:
        v = self.verts
        w = v.gather(1, self.next_vertex()[..., None].expand_as(v))
        return (torch.linalg.vector_norm(w - v, dim=-1) * self.valid()).sum(1)

    def centroids(self) -> torch.Tensor:
        """Area centroids (P, 2); the vertex mean for degenerate polygons."""
        first, v, w = self._from_first()
        valid = self.valid()
        cross = (v[..., 0] * w[..., 1] - v[..., 1] * w[..., 0]) * valid
        a = cross.sum(1) / 2
        c = ((v + w) * cross[..., None]).sum(1) / (6 * a.clamp(min=1e-300)[:, None])
        mean = (v * valid[..., None]).sum(1) / self.counts.clamp(min=1)[:, None]
        return first[:, 0] + torch.where((a > 0)[:, None], c, mean)

    def edges(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every edge as (start, end) points (E, 2, 2) and its label (E,)."""
        v = self.verts
        w = v.gather(1, self.next_vertex()[..., None].expand_as(v))
        valid = self.valid()
        return torch.stack([v[valid], w[valid]], 1), self.labels[valid]


def values_at(lines: torch.Tensor, verts: torch.Tensor) -> torch.Tensor:
    """a + b u + c v of lines (N, ..., 3) at verts (N, V, 2): (N, V, ...)."""
    extra = lines.dim() - 2
    u = verts[..., 0].reshape(*verts.shape[:2], *([1] * extra))
    v = verts[..., 1].reshape(*verts.shape[:2], *([1] * extra))
    a, b, c = lines[..., 0].unsqueeze(1), lines[..., 1].unsqueeze(1), lines[..., 2].unsqueeze(1)
    return a + u * b + v * c


def classify(s: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
    """+1 / -1 strictly beyond the rounding floor, 0 on the line (rounding guard)."""
    f = floor.reshape(-1, *([1] * (s.dim() - 1)))
    return (s > f).to(torch.int8) - (s < -f).to(torch.int8)


def clip(polys: Polygons, s: torch.Tensor, floor: torch.Tensor, label: int) -> tuple[Polygons, torch.Tensor]:
    """Each polygon clipped to {s >= 0}, s (N, V) being an affine function's values at its
    vertices; the new edge along s = 0 gets `label`. Returns the clipped polygons and whether each
    keeps positive area (a vertex strictly inside, beyond the rounding floor).

    Sutherland-Hodgman for convex polygons, batched: every vertex and every edge crossing is a
    slot [v0, x0, v1, x1, ...]; kept slots are compacted in order.
    """
    n, width = s.shape
    valid = polys.valid()
    cls = classify(s, floor)
    nxt = polys.next_vertex()
    s1 = s.gather(1, nxt)
    cls1 = cls.gather(1, nxt)
    v0 = polys.verts
    v1 = v0.gather(1, nxt[..., None].expand_as(v0))
    cross = valid & (cls.to(torch.int16) * cls1 < 0)
    t = torch.where(cross, s / torch.where(cross, s - s1, torch.ones_like(s)), torch.zeros_like(s))
    x = v0 + t[..., None] * (v1 - v0)
    keep = valid & (cls >= 0)
    new = torch.full_like(polys.labels, label)
    lab_v = torch.where((cls == 0) & (cls1 < 0), new, polys.labels)
    lab_x = torch.where(cls1 > 0, polys.labels, new)
    items = torch.stack([v0, x], 2).reshape(n, 2 * width, 2)
    mask = torch.stack([keep, cross], 2).reshape(n, 2 * width)
    labs = torch.stack([lab_v, lab_x], 2).reshape(n, 2 * width)
    counts = mask.sum(1)
    out_w = max(1, int(counts.max()) if n else 1)
    pos = torch.cumsum(mask, 1) - 1
    rows, cols = mask.nonzero(as_tuple=True)
    verts = items.new_zeros(n, out_w, 2)
    labels = labs.new_full((n, out_w), BOX_LABEL)
    verts[rows, pos[rows, cols]] = items[rows, cols]
    labels[rows, pos[rows, cols]] = labs[rows, cols]
    alive = (valid & (cls > 0)).any(1)
    return Polygons(verts, counts, labels), alive


def winners(values: torch.Tensor, valid: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
    """(N, ..., k) bool: candidates within the floor of the maximum at every vertex.

    `values` (N, V, ..., k); by convexity of the max, such a candidate is the maximum on the whole
    polygon (up to rounding).
    """
    m = values.max(-1, keepdim=True).values
    f = floor.reshape(-1, *([1] * (values.dim() - 1)))
    near = values >= m - f
    vmask = valid.reshape(*valid.shape, *([1] * (values.dim() - 2)))
    return (near | ~vmask).all(1)


def cell_split(
    polys: Polygons, cand: torch.Tensor, floor: torch.Tensor, label: int
) -> tuple[Polygons, torch.Tensor, torch.Tensor]:
    """Split each polygon into the cells of max(cand): cand (N, k, 3) affine candidates.

    Returns the pieces, the index of the polygon each came from, and the number of vertices
    processed. A polygon where one candidate wins everywhere (`winners`) is kept whole; otherwise
    candidate i's cell is the polygon clipped by cand_i - cand_j >= 0 for every j. Ties follow
    argmax: a candidate equal (within the floor) to an earlier one has no cell of its own; -inf
    candidates (MaxPool padding) have none either.
    """
    n, k, _ = cand.shape
    dev = cand.device
    valid = polys.valid()
    vals = values_at(cand, polys.verts)  # (N, V, k)
    split = ~winners(vals, valid, floor).any(-1)
    keep_idx = (~split).nonzero().flatten()
    act = split.nonzero().flatten()
    work = polys.verts.shape[1] * n
    if act.numel() == 0:
        return polys, torch.arange(n, device=dev), torch.tensor(work)
    sub = polys.take(act)
    c = cand[act]  # (A, k, 3)
    fl = floor[act]
    finite = torch.isfinite(c[..., 0])  # (A, k)
    diff = c[:, :, None, :] - torch.where(finite[..., None], c, torch.zeros_like(c))[:, None, :, :]  # (A, i, j, 3)
    sv = values_at(diff.reshape(act.numel(), k * k, 3), sub.verts).reshape(act.numel(), -1, k, k)
    fv = fl.reshape(-1, 1, 1, 1)
    vmask = sub.valid()[..., None, None]
    tied = ((sv.abs() <= fv) | ~vmask).all(1)  # (A, i, j)
    eye = torch.eye(k, dtype=torch.bool, device=dev)
    earlier = torch.ones(k, k, dtype=torch.bool, device=dev).tril(-1)  # j < i
    ok = finite & ~(tied & earlier & finite[:, None, :]).any(-1)  # (A, i)
    skip = eye | tied | ~finite[:, None, :]  # constraints that bind nothing
    # replicate each polygon once per candidate: row (a, i)
    rep = torch.arange(act.numel(), device=dev).repeat_interleave(k)
    cells = sub.take(rep)
    alive = ok.reshape(-1).clone()
    ii = torch.arange(k, device=dev).repeat(act.numel())
    for m in range(1, k):
        jj = (ii + m) % k
        lines = diff.reshape(act.numel(), k, k, 3)[rep, ii, jj]
        s = values_at(lines, cells.verts)
        s = torch.where(skip[rep, ii, jj][:, None], torch.full_like(s, math.inf), s)
        work += s.numel()
        cells, still = clip(cells, s, fl[rep], label)
        alive &= still
    # rounding guard: drop cells that lost their area on the way
    alive &= cells.counts >= 3
    pieces = Polygons.cat([polys.take(keep_idx), cells.take(alive.nonzero().flatten())])
    origin = torch.cat([keep_idx, act[rep[alive]]])
    return pieces, origin, torch.tensor(work)


def halve_rounds(
    polys: Polygons, lines: torch.Tensor, first: torch.Tensor, count: torch.Tensor, floor: torch.Tensor,
    label: int, room: int | None = None,
) -> tuple[Polygons, torch.Tensor, int, bool]:
    """Split polygon p by its lines lines[first[p] : first[p] + count[p]] (rows (a, b, c)), one
    line per round for every polygon at once, each piece into its two sides: the ReLU-type case of
    `cell_split` (candidates z and 0) without the candidate axis. After the round in which more
    than `room` pieces were added, it stops. Returns the pieces, the polygon each came from, the
    vertices processed and whether it stopped.

    A piece keeps its slot (the side s >= 0 of a cut) and the other side goes to the end, so no
    round copies the pieces it does not cut. Where the polygons have many lines each (the box
    and a wide first layer), each becomes many pieces, of which a line cuts few; then a piece
    whose bounding circle (about its vertex mean) lies beyond the floor on one side of the line,
    with a margin far above rounding, is not read at its vertices: it cannot be cut. The others
    are classified at every vertex (`classify`), so the pieces are those of a test at every
    vertex of every piece. They are listed as a round at a time would list them (the pieces it
    did not cut, then the cuts' sides s >= 0, then their sides s < 0, after the pieces whose
    polygon's lines ran out): where --max-regions stops the partition, the order decides which
    chunk of pieces the next layers split first.
    """
    dev = polys.counts.device
    n = len(polys)
    one = n == 1  # one polygon: every piece meets the same line in a round
    buf = _Buffer(polys, torch.arange(n, device=dev))
    many = lines.shape[0] >= LINES_PER_POLYGON * n
    order = torch.arange(n, device=dev)  # the slots of the pieces still to split, listed
    done: list[torch.Tensor] = []
    work, added, stopped = 0, 0, False
    for r in range(int(count.max()) if n else 0):
        if not one:
            origin = buf.origin[order]
            has = count[origin] > r
            if not bool(has.all()):
                done.append(order[~has])
                order, origin = order[has], origin[has]
        line = lines[r] if one else lines[first[origin] + r]
        if many and buf.circles is None and buf.n >= CIRCLES_FROM:
            buf.keep_circles()
        f = floor[0] if one else floor[origin]
        near = None if buf.circles is None else _near(line, buf.circles.index_select(0, order), f)
        act = order if near is None else order[near]
        if near is not None:
            line, f = (line, f) if one else (line[near], f[near])
        width = int(buf.counts[act].max()) if act.numel() else 1
        sub = Polygons(buf.verts[act, :width], buf.counts[act], buf.labels[act, :width])
        s = values_at(line.expand(act.shape[0], 3), sub.verts)
        valid = sub.valid()
        f = f.expand(act.shape[0])
        cls = classify(s, f)
        cut = ((cls > 0) & valid).any(1) & ((cls < 0) & valid).any(1)
        work += s.numel()
        if not bool(cut.any()):
            continue
        idx = cut.nonzero().flatten()
        sub = sub.take(idx)
        ss, fl = s[idx, : sub.verts.shape[1]], f[idx]
        pos, _ = clip(sub, ss, fl, label)
        neg, _ = clip(sub, -ss, fl, label)
        work += 2 * ss.numel()
        slot = act[idx]
        buf.put(slot, pos)
        new = buf.append(neg, buf.origin[slot])
        kept = torch.ones(order.shape[0], dtype=torch.bool, device=dev)
        kept[idx if near is None else near[idx]] = False
        order = torch.cat([order[kept], slot, new])
        added += len(neg)
        if room is not None and added > room:
            stopped = True
            break
    listed = torch.cat([*done, order])
    return buf.polygons().take(listed), buf.origin[listed], work, stopped


# From this many lines per polygon, and this many pieces, `halve_rounds` first tests each
# piece's bounding circle (with fewer, the test at every vertex costs less than keeping circles)
LINES_PER_POLYGON = 8
CIRCLES_FROM = 4096


def _near(line: torch.Tensor, circles: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
    """Positions of the pieces (circles: rows (cu, cv, rho, extent)) that the line (a, b, c)
    may cut: within the floor plus the circle's reach |(b, c)| rho of it at the centre, plus
    a margin of the terms' size far above their rounding (1e-9 in float64, 1024 eps in float32)."""
    rel = max(1e-9, 1024 * torch.finfo(circles.dtype).eps)
    a, b, c = line.unbind(-1)
    cu, cv, rho, extent = circles.unbind(1)
    reach = rho * torch.hypot(b, c) * (1 + rel)
    margin = rel * (a.abs() + extent * (b.abs() + c.abs()))
    return ((a + cu * b + cv * c).abs() <= reach + floor + margin).nonzero().flatten()


class _Buffer:
    """Pieces in slots that grow by doubling: vertices, counts, labels, the polygon each came
    from and, once set, each one's bounding circle (rows (cu, cv, rho, extent): centre,
    radius, and max(|cu|, |cv|) + rho)."""

    def __init__(self, polys: Polygons, origin: torch.Tensor):
        self.n = len(polys)
        self.verts, self.counts, self.labels = polys.verts.clone(), polys.counts.clone(), polys.labels.clone()
        self.origin = origin
        self.circles: torch.Tensor | None = None  # kept from when they are first asked for

    def keep_circles(self) -> None:
        self.circles = _grown(_circles(self.polygons()), self.counts.shape[0], 0.0)

    def put(self, slot: torch.Tensor, polys: Polygons) -> None:
        self._widen(polys.verts.shape[1])
        extra = self.verts.shape[1] - polys.verts.shape[1]  # the padding of a slot's rows is rewritten too
        self.verts[slot] = F.pad(polys.verts, (0, 0, 0, extra))
        self.labels[slot] = F.pad(polys.labels, (0, extra), value=BOX_LABEL)
        self.counts[slot] = polys.counts
        if self.circles is not None:
            self.circles[slot] = _circles(polys)

    def append(self, polys: Polygons, origin: torch.Tensor) -> torch.Tensor:
        m = len(polys)
        if self.n + m > self.counts.shape[0]:
            cap = max(2 * self.counts.shape[0], self.n + m)
            self.verts, self.labels = _grown(self.verts, cap, 0.0), _grown(self.labels, cap, BOX_LABEL)
            self.counts, self.origin = _grown(self.counts, cap, 0), _grown(self.origin, cap, 0)
            if self.circles is not None:
                self.circles = _grown(self.circles, cap, 0.0)
        self.origin[self.n : self.n + m] = origin
        slot = torch.arange(self.n, self.n + m, device=origin.device)
        self.n += m
        self.put(slot, polys)
        return slot

    def _widen(self, width: int) -> None:
        extra = width - self.verts.shape[1]
        if extra > 0:
            self.verts = torch.cat([self.verts, self.verts.new_zeros(self.verts.shape[0], extra, 2)], 1)
            self.labels = torch.cat([self.labels, self.labels.new_full((self.labels.shape[0], extra), BOX_LABEL)], 1)

    def polygons(self) -> Polygons:
        counts = self.counts[: self.n]
        width = int(counts.max()) if self.n else 1
        return Polygons(self.verts[: self.n, :width], counts, self.labels[: self.n, :width])


def _grown(t: torch.Tensor, rows: int, value) -> torch.Tensor:
    return torch.cat([t, t.new_full((rows - t.shape[0], *t.shape[1:]), value)])


def _circles(polys: Polygons) -> torch.Tensor:
    """Each polygon's vertex mean (cu, cv), the largest distance rho from it to a vertex, and
    max(|cu|, |cv|) + rho: (P, 4)."""
    mean = polys.vertex_means()
    rho = (torch.linalg.vector_norm(polys.verts - mean[:, None, :], dim=-1) * polys.valid()).amax(1)
    return torch.stack([mean[:, 0], mean[:, 1], rho, mean.abs().amax(1) + rho], 1)
