"""Convex polygons of a plane, batched and padded, and their splitting by affine functions: by a
line into its two sides, or into the cells of a maximum of affine candidates (slices.py). Each
edge is labelled with the kink node whose line made it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

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

    def areas(self) -> torch.Tensor:
        """Shoelace areas (P,)."""
        v = self.verts
        w = v.gather(1, self.next_vertex()[..., None].expand_as(v))
        cross = v[..., 0] * w[..., 1] - v[..., 1] * w[..., 0]
        return (cross * self.valid()).sum(1) / 2

    def perimeters(self) -> torch.Tensor:
        v = self.verts
        w = v.gather(1, self.next_vertex()[..., None].expand_as(v))
        return (torch.linalg.vector_norm(w - v, dim=-1) * self.valid()).sum(1)

    def centroids(self) -> torch.Tensor:
        """Area centroids (P, 2); the vertex mean for degenerate polygons."""
        v = self.verts
        w = v.gather(1, self.next_vertex()[..., None].expand_as(v))
        valid = self.valid()
        cross = (v[..., 0] * w[..., 1] - v[..., 1] * w[..., 0]) * valid
        a = cross.sum(1) / 2
        c = ((v + w) * cross[..., None]).sum(1) / (6 * a.clamp(min=1e-300)[:, None])
        mean = (v * valid[..., None]).sum(1) / self.counts.clamp(min=1)[:, None]
        return torch.where((a > 0)[:, None], c, mean)

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


def halve(
    polys: Polygons, parent: torch.Tensor, lines: torch.Tensor, floor: torch.Tensor, label: int
) -> tuple[Polygons, torch.Tensor, int]:
    """Split each polygon cut by its line (N, 3) into its two sides: the ReLU-type case of
    `cell_split` (candidates z and 0) without the candidate axis."""
    s = values_at(lines, polys.verts)
    valid = polys.valid()
    cls = classify(s, floor)
    cut = ((cls > 0) & valid).any(1) & ((cls < 0) & valid).any(1)
    work = s.numel()
    if not bool(cut.any()):
        return polys, parent, work
    idx = cut.nonzero().flatten()
    keep = (~cut).nonzero().flatten()
    sub = polys.take(idx)
    ss = s[idx, : sub.verts.shape[1]]
    fl = floor[idx]
    pos, _ = clip(sub, ss, fl, label)
    neg, _ = clip(sub, -ss, fl, label)
    work += 2 * ss.numel()
    out = Polygons.cat([polys.take(keep), pos, neg])
    return out, torch.cat([parent[keep], parent[idx], parent[idx]]), work
