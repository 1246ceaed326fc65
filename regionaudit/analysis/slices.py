"""Exact 2-D slices: the activation regions of a plane through input space (DESIGN.md, "2-D slices").

On the plane x(u, v) = o + u e1 + v e2 every node is affine on every activation region, so each
polygon carries, for every live tensor, three coefficient tensors (value at the box centre and the
derivatives along u and v) instead of values at its vertices. Kink node by kink node, in
topological order (Hanin & Rolnick 2019b, appendix: "we add neurons ... one by one ... observing how
each neuron cuts existing regions"):

- the kink's input is affine on a polygon, so its values at the polygon's vertices decide which
  units (ReLU-type: the zero line; MaxPool: the pairwise differences of a window's candidates)
  cut it;
- every cut polygon is split, one cutting unit (or window) per round, batched over all polygons:
  a polygon is replaced by the cells of the unit's candidates, i.e. clipped by half-planes;
- every child then picks its side (mask, or window winner) and the kink is applied to its
  coefficients, exactly.

Rounding guard (the 1-D analysis's, see `_common.zero_tolerance`): a value within
`16 eps x mag` of zero at a vertex is on the line, where `mag` bounds every value computed so far on
the polygon (`_magnitude`); a line cuts a polygon only with vertices strictly on both sides of
that floor (`polygons.classify`), and a MaxPool candidate within the floor of the window's
maximum at every vertex wins the whole polygon (`polygons.cell_split`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from regionaudit.analysis._common import (
    bounded_by_inputs, bytes_per_probe, default_max_memory, needed_nodes, shares_storage, zero_tolerance,
)
from regionaudit.analysis.polygons import BOX_LABEL, Polygons, cell_split, halve_rounds, values_at, winners
from regionaudit.errors import BadOption
from regionaudit.ir import Clip, LeakyRelu, Network, Sum, UnitKink

# `_magnitude` (a bound over the box, not `_common.magnitude`) on CPU works through this many
# bytes of polygons' coefficients at a time, so that its passes read and write the cache
# (measured on 300-3000 polygons of 100-4096 units: 1.3-1.8x faster than passes over all of
# them; 4 MB chunks gained nothing)
BOX_BOUND_CHUNK_BYTES = 1 << 20
# Once --max-regions has stopped the partition, no polygon is split again and each goes through
# the remaining nodes on its own, so batches of any size give the same numbers in the same order:
# a batch then holds at most this many bytes of polygons (the `cap` of a budget of 4x this), so
# that a node's passes over it reuse the cache (measured on `cifar10_resnet_2b`'s slices of
# 40 000 and 200 000 regions, which stop at the first ReLU: 6-9 % faster than batches of the
# default budget, 80-340 polygons there; 16 polygons, 30 % slower)
STOPPED_BATCH_BYTES = 80 << 20


@dataclass
class Plane:
    """x(u, v) = origin + u axes[0] + v axes[1], over the box umin <= u <= umax, vmin <= v <= vmax."""

    origin: torch.Tensor  # (D,) float64
    axes: torch.Tensor  # (2, D) float64
    box: tuple[float, float, float, float]  # (umin, umax, vmin, vmax)

    @property
    def centre(self) -> tuple[float, float]:
        umin, umax, vmin, vmax = self.box
        return (umin + umax) / 2, (vmin + vmax) / 2

    @property
    def half(self) -> tuple[float, float]:
        umin, umax, vmin, vmax = self.box
        return (umax - umin) / 2, (vmax - vmin) / 2

    @property
    def area(self) -> float:
        hu, hv = self.half
        return 4 * hu * hv

    def points(self, uv) -> torch.Tensor:
        """Input-space points (N, D) at plane coordinates uv (N, 2)."""
        uv = torch.as_tensor(uv, dtype=torch.float64)
        return self.origin + uv @ self.axes.to(torch.float64)


# ----------------------------------------------------------------------------------------------
# the partition


@dataclass
class Partition:
    """The activation regions of a plane's box, one convex polygon each."""

    polygons: Polygons  # coordinates relative to `centre`
    centre: tuple[float, float]
    outputs: torch.Tensor  # (P, 3, n_outputs): output = o0 + (u - cu) o1 + (v - cv) o2
    patterns: torch.Tensor  # (P, B) uint8: every kink node's mask (packed bits) or window winners
    mag: torch.Tensor  # (P,) scale of the rounding of each polygon's values
    boundary_length: dict[str, float | None]  # kink node name -> length of the boundary it made (None: never split)
    truncated: bool = False
    vertices_processed: int = 0
    dtype: torch.dtype = torch.float64

    @property
    def regions(self) -> int:
        return len(self.polygons)

    def vertices(self) -> list:
        """Each polygon's vertices in plane coordinates, as float64 numpy arrays."""
        v = self.polygons.verts.detach().to("cpu", torch.float64).numpy()
        c = self.polygons.counts.tolist()
        cu, cv = self.centre
        return [v[p, : c[p]] + (cu, cv) for p in range(len(c))]


@dataclass
class _Batch:
    polys: Polygons
    values: dict[int, torch.Tensor]  # node id -> (P, 3, *shape)
    mag: torch.Tensor
    patterns: list[torch.Tensor] = field(default_factory=list)
    own: set[int] = field(default_factory=set)  # values that are this batch's own copies, read by no other batch


_PADDING = {"verts": 0.0, "labels": BOX_LABEL}  # a polygon's unused vertex slots, as `Polygons.cat` pads them


class _Finished:
    """The polygons that went through every node, with their outputs, patterns and magnitudes, in
    buffers that grow by doubling: a batch's own tensors are not kept. A large slice finishes
    hundreds of chunks of polygons (--max-memory), and each chunk's small tensors, kept to the end,
    split the heap's freed blocks, so that every later chunk's temporaries took fresh memory
    (measured on `cifar10_resnet_2b`'s 100 000-region slice: 1.2 million page faults, 9 s of system
    time and 5.3 GB resident, against 43 000, 0.1 s and 0.8 GB with the results copied out)."""

    def __init__(self):
        self.n = 0
        self.buffers: dict[str, torch.Tensor] = {}

    def add(self, batch: _Batch, output: int) -> None:
        p = len(batch.polys)
        if p == 0:
            return
        polys = batch.polys
        patterns = torch.cat(batch.patterns, 1) if batch.patterns else polys.counts.new_zeros(p, 0, dtype=torch.uint8)
        rows = {"verts": polys.verts, "counts": polys.counts, "labels": polys.labels,
                "outputs": batch.values[output].reshape(p, 3, -1), "patterns": patterns, "mag": batch.mag}
        self._make_room(rows, p)
        for key, row in rows.items():
            _put(key, self.buffers[key][self.n : self.n + p], row)
        self.n += p

    def _make_room(self, rows: dict[str, torch.Tensor], p: int) -> None:
        """Buffers that hold n + p rows, as wide as the widest polygon yet (rows: a batch's)."""
        held = self.buffers.get("counts")
        capacity = 0 if held is None else held.shape[0]
        width = 0 if held is None else self.buffers["verts"].shape[1]
        if self.n + p <= capacity and rows["verts"].shape[1] <= width:
            return
        if self.n + p > capacity:
            capacity = max(2 * capacity, self.n + p)
        width = max(width, rows["verts"].shape[1])
        for key, row in rows.items():
            shape = (capacity, width, *row.shape[2:]) if key in _PADDING else (capacity, *row.shape[1:])
            new = row.new_empty(shape)
            if self.n:
                _put(key, new[: self.n], self.buffers[key][: self.n])
            self.buffers[key] = new

    def polygons(self) -> Polygons:
        b = self.buffers
        return Polygons(b["verts"][: self.n], b["counts"][: self.n], b["labels"][: self.n])

    def __getitem__(self, key: str) -> torch.Tensor:
        return self.buffers[key][: self.n]


def _put(key: str, into: torch.Tensor, rows: torch.Tensor) -> None:
    """Rows of buffer `key` written into `into`, padded where it is the wider (`_PADDING`)."""
    if key in _PADDING:
        into[:, : rows.shape[1]] = rows
        into[:, rows.shape[1] :] = _PADDING[key]
    else:
        into.copy_(rows)


def _offsets(node: UnitKink, z: torch.Tensor) -> torch.Tensor:
    """An elementwise kink's breakpoint offsets as affine coefficients (P, 3, breaks * units):
    the offsets at the centre, and their derivatives along e1 and e2 (the offsets' linear part).
    A (leaky) ReLU's offsets are its input: a view of it, not a copy."""
    if isinstance(node, LeakyRelu):
        return z.reshape(z.shape[0], 3, -1)
    return torch.stack([node.offsets(z[:, 0]), node.offset_slopes(z[:, 1]), node.offset_slopes(z[:, 2])], 1)

def _magnitude(v: torch.Tensor, hu: float, hv: float) -> torch.Tensor:
    """Bound on |value| over the box of each polygon's affine tensor v (P, 3, ...)."""
    flat = v.reshape(v.shape[0], 3, -1)
    p, _, u = flat.shape
    if u == 0:
        return v.new_zeros(p)
    # |c0| + hu |c1| + hv |c2|, in that order, in place in two buffers; on CPU a chunk of polygons
    # at a time (BOX_BOUND_CHUNK_BYTES)
    step = p if flat.device.type != "cpu" else max(1, BOX_BOUND_CHUNK_BYTES // (3 * u * flat.element_size()))
    out = flat.new_empty(p)
    bound, part = flat.new_empty(min(p, step), u), flat.new_empty(min(p, step), u)
    for lo in range(0, p, step):
        c = flat[lo : lo + step]
        b, q = bound[: c.shape[0]], part[: c.shape[0]]
        torch.abs(c[:, 0], out=b)
        b.add_(torch.abs(c[:, 1], out=q).mul_(hu))
        b.add_(torch.abs(c[:, 2], out=q).mul_(hv))
        torch.amax(b.nan_to_num_(posinf=0.0), 1, out=out[lo : lo + step])
    return out


def _keeps_scale(node) -> bool:
    """Whether each polygon's bound `_magnitude` of the node's output cannot exceed its input's, in
    floating point too (copies, selections, |slope| <= 1 times them): then `mag`, which already
    holds the input's, needs no pass over the output. A Clip is measured: its constant pieces
    can exceed its input by up to the rounding floor."""
    return bounded_by_inputs(node) and not isinstance(node, Clip)


def _pack(bits: torch.Tensor) -> torch.Tensor:
    """(P, U) bool -> (P, ceil(U/8)) uint8, most significant bit first (numpy's `packbits` on CPU,
    10x faster than the products below)."""
    if bits.device.type == "cpu":
        return torch.from_numpy(np.packbits(bits.numpy(), axis=1))
    p, u = bits.shape
    pad = (-u) % 8
    if pad:
        bits = torch.cat([bits, bits.new_zeros(p, pad)], 1)
    w = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.int32, device=bits.device)
    return (bits.reshape(p, -1, 8).to(torch.int32) * w).sum(-1).to(torch.uint8)


def _at_vertex_mean(polys: Polygons, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each polygon's vertex mean (P, 2), an interior point, and the affine tensor flat
    (P, 3, U) there (P, U). Where flat is one polygon's, expanded (`_kink`), one product reads
    it once."""
    mean = polys.vertex_means()
    h = torch.cat([torch.ones_like(mean[:, :1]), mean], 1)  # (P, 3)
    if flat.stride(0) == 0:
        return mean, h @ flat[0]
    return mean, torch.bmm(h[:, None, :], flat)[:, 0]


def _dead_windows(node, flat: torch.Tensor, spatial) -> torch.Tensor:
    """(P, G): windows whose candidates' coefficients (flat (P, 3, U)) are all exactly zero, as a
    dead ReLU unit's are: every candidate is then the maximum everywhere."""
    size = flat.abs().sum(1).reshape(flat.shape[0], *spatial)
    return node.candidates(size, value=0.0).amax(-1) == 0


def _window_coefficients(node, z: torch.Tensor, rows: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
    """The candidates (R, 3, k) of window windows[r] of polygon rows[r] as affine coefficients,
    read cell by cell; padding is (-inf, 0, 0)."""
    parts = z.reshape(z.shape[0] * 3, *z.shape[2:])
    coef = torch.stack([node.candidates_at(parts, 3 * rows + c, windows) for c in range(3)], 1)
    padding = torch.tensor([-math.inf, 0.0, 0.0], dtype=coef.dtype, device=coef.device).reshape(1, 3, 1)
    return torch.where(torch.isfinite(coef[:, :1]), coef, padding)


def _window_winners(polys: Polygons, coef: torch.Tensor, rows: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
    """(R, k) bool: the candidates coef (R, 3, k) of a window on polygon rows[r] that are within
    the rounding floor of the window's maximum at every vertex (by convexity of the max: the
    maximum on the whole polygon)."""
    verts = polys.verts[rows]
    h = torch.cat([torch.ones_like(verts[..., :1]), verts], -1)  # (R, V, 3)
    return winners(torch.bmm(h, coef), polys.valid()[rows], floor[rows])


class _Partitioner:
    def __init__(self, network: Network, plane: Plane, max_regions: int | None, max_memory: int):
        self.net = network
        self.plane = plane
        self.order = needed_nodes(network)
        self.last = network.last_use(self.order)
        self.hu, self.hv = plane.half
        self.max_regions = max_regions
        self.live = 1
        self.truncated = False
        self.work = 0
        self.lengths = {network.nodes[i].name: 0.0 for i in network.kink_ids}
        self.split_at: set[str] = set()  # kink nodes that split polygons before --max-regions stopped the partition
        itemsize = torch.empty((), dtype=network.dtype).element_size()
        per_poly = 3 * bytes_per_probe(network, self.order, itemsize) + 64 * 24
        self.cap = max(16, int(max_memory) // (4 * per_poly))
        self.stopped_cap = min(self.cap, max(16, STOPPED_BATCH_BYTES // per_poly))  # (see STOPPED_BATCH_BYTES)
        self.done = _Finished()
        self._bias: dict[int, torch.Tensor] = {}
        self.tol = zero_tolerance(network.dtype)
        self.keeps_scale = {i for i in self.order if _keeps_scale(network.nodes[i])}  # once: a slope check reads the device

    def _writable(self, values: dict[int, torch.Tensor], own: set[int], q: int, i: int) -> bool:
        """Whether node i may overwrite value q: the batch's own copy, read nowhere after node i,
        and no other live value a view of it."""
        v = values[q]
        return q in own and self.last[q] <= i and not any(k != q and shares_storage(v, w) for k, w in values.items())

    # -- affine nodes on coefficient triples
    def _affine(self, i: int, batch: _Batch) -> None:
        """Node i's coefficients into the batch. A residual sum adds into its first term where
        that may be overwritten (`Sum.forward_inplace`: the same sums, no new tensor)."""
        node = self.net.nodes[i]
        xs = [batch.values[k] for k in node.inputs]
        p = xs[0].shape[0]
        flat = [x.reshape(p * 3, *x.shape[2:]) for x in xs]
        in_place = isinstance(node, Sum) and self._writable(batch.values, batch.own, node.inputs[0], i)
        y = node.forward_inplace(flat) if in_place else node.linear(flat)
        y = y.reshape(p, 3, *y.shape[1:])
        if i not in self._bias:
            zeros = [x.new_zeros(1, *x.shape[2:]) for x in xs]
            bias = node.forward(zeros) - node.linear(zeros)
            self._bias[i] = bias[0] if bool(bias.any()) else None  # (one read of the device)
        bias = self._bias[i]
        shared = any(shares_storage(y, x) for x in xs)  # (a reshape, a bias-free layer: a view of an input)
        if bias is not None:
            if shared and not in_place:
                y, shared = y.clone(), False
            y[:, 0] += bias
        batch.values[i] = y
        if in_place or not shared:
            batch.own.add(i)

    def run(self) -> None:
        net = self.net
        hu, hv = self.hu, self.hv
        dt, dev = net.dtype, net.device
        square = torch.tensor([[-hu, -hv], [hu, -hv], [hu, hv], [-hu, hv]], dtype=dt, device=dev)
        polys = Polygons(square[None], torch.tensor([4], device=dev), torch.full((1, 4), BOX_LABEL, device=dev))
        cu, cv = self.plane.centre
        o = self.plane.origin.to(dt) + cu * self.plane.axes[0].to(dt) + cv * self.plane.axes[1].to(dt)
        x = net.prepare(torch.stack([o, self.plane.axes[0].to(dt), self.plane.axes[1].to(dt)]))
        x = x.to(dev)[None]  # (1, 3, *graph_input_shape)
        batch = _Batch(polys, {0: x}, _magnitude(x, hu, hv))
        self._descend(batch, 1)

    def _descend(self, batch: _Batch, pos: int) -> None:
        net = self.net
        for at in range(pos, len(self.order)):
            i = self.order[at]
            node = net.nodes[i]
            if node.is_kink:
                children, parent = self._split(i, batch)
                cap = self.stopped_cap if self.truncated else self.cap
                if len(children) > cap:
                    for lo in range(0, len(children), cap):
                        idx = torch.arange(lo, min(lo + cap, len(children)), device=children.counts.device)
                        sub = self._kink(i, batch, children.take(idx), idx if parent is None else parent[idx])
                        self._descend(sub, at + 1)
                    return
                batch = self._kink(i, batch, children, parent)
            else:
                self._affine(i, batch)
                if i not in self.keeps_scale:
                    batch.mag = torch.maximum(batch.mag, _magnitude(batch.values[i], self.hu, self.hv))
            for k in list(batch.values):
                if self.last.get(k, k) <= i:
                    del batch.values[k]
        self.done.add(batch, self.net.output)

    # -- kink nodes
    def _offset_winners(self, polys: Polygons, z: torch.Tensor, node: UnitKink, floor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(P, G, 2) bool, and the offsets (P, 3, G): an elementwise kink's breakpoint offsets
        (z for a ReLU, z - lo and z - hi for a Clip) as candidates (offset, 0): the offset wins
        where it is >= -floor at every vertex of the polygon, 0 where it is <= floor (by
        convexity of the max: on the whole polygon). Values at the vertices come from one
        batched matmul per chunk of polygons."""
        p = z.shape[0]
        coef = _offsets(node, z).reshape(p, 3, -1)
        g = coef.shape[-1]
        width = polys.verts.shape[1]
        h = torch.cat([torch.ones_like(polys.verts[..., :1]), polys.verts], -1)  # (P, V, 3)
        valid = polys.valid()
        out = torch.empty(p, g, 2, dtype=torch.bool, device=coef.device)
        step = max(1, (1 << 22) // max(1, width * g))
        for lo in range(0, p, step):
            hi = min(p, lo + step)
            z_at = torch.bmm(h[lo:hi], coef[lo:hi])  # (chunk, V, G)
            f = floor[lo:hi].reshape(-1, 1, 1)
            vm = valid[lo:hi, :, None]
            out[lo:hi] = torch.stack([((z_at >= -f) | ~vm).all(1), ((z_at <= f) | ~vm).all(1)], -1)
        return out, coef

    def _window_cuts(self, node, polys: Polygons, z: torch.Tensor, floor: torch.Tensor):
        """The (polygon, window) pairs where no candidate is within the floor of the window's
        maximum at every vertex (the rule `_window_winners` applies), in (polygon, window) order,
        with their candidates' coefficients (pairs, k, 3).

        A window is certainly not one of them where its leader at the vertex mean stays above
        every other candidate over the whole polygon, by more than twice the floor: the leader's
        least value (its value at the mean less |slope| x the polygon's extent from the mean,
        along each axis) beats every other's largest. It then leads at every vertex. Nor is a
        window of exactly-zero candidates. Only the other windows are read at every vertex, and
        only the pairs found cut have their coefficients copied."""
        p = z.shape[0]
        flat = z.reshape(p, 3, -1)
        spatial = z.shape[2:]
        valid = polys.valid()
        mean, at_mean = _at_vertex_mean(polys, flat)
        off = (polys.verts - mean[:, None, :]).abs() * valid[..., None]
        du, dv = off.amax(1).unbind(1)
        spread = flat[:, 1].abs() * du[:, None] + flat[:, 2].abs() * dv[:, None]
        cand = node.candidates(at_mean.reshape(p, *spatial))  # (P, G, k), -inf at padding
        reach = node.candidates(spread.reshape(p, *spatial), value=0.0)
        lead = cand.argmax(-1, keepdim=True)
        least = (cand - reach).gather(-1, lead)
        most = (cand + reach).scatter_(-1, lead, -math.inf).amax(-1, keepdim=True)
        clear = (least - most > 2 * floor[:, None, None])[..., 0]
        rows, windows = (~(clear | _dead_windows(node, flat, spatial))).nonzero(as_tuple=True)
        coef = _window_coefficients(node, z, rows, windows)  # (R, 3, k)
        cut = ~_window_winners(polys, coef, rows, floor).any(-1)  # (a subset, in the same order)
        return rows[cut], windows[cut], coef[cut].transpose(1, 2)

    def _split(self, i: int, batch: _Batch) -> tuple[Polygons, torch.Tensor | None]:
        """The polygons after kink node i's cuts, and the index of the polygon each came from;
        None for that index where no polygon was cut (the batch's own polygons, in order)."""
        node = self.net.nodes[i]
        z = batch.values[node.inputs[0]]
        floor = batch.mag * self.tol
        n = len(batch.polys)
        relu = isinstance(node, UnitKink)
        if self.truncated:
            return batch.polys, None
        self.split_at.add(node.name)
        if relu:
            win, coef = self._offset_winners(batch.polys, z, node, floor)
            p_idx, g_idx = (~win.any(-1)).nonzero(as_tuple=True)
            groups = coef[p_idx, :, g_idx][:, None, :]  # (G, 1, 3) in (polygon, unit) order
        else:
            p_idx, g_idx, groups = self._window_cuts(node, batch.polys, z, floor)  # (G, k, 3)
        if not p_idx.numel():
            return batch.polys, None
        n_groups = torch.bincount(p_idx, minlength=n)
        start = torch.cumsum(n_groups, 0) - n_groups
        if relu:
            room = None if self.max_regions is None else self.max_regions - self.live
            children, parent, work, self.truncated = halve_rounds(batch.polys, groups[:, 0], start, n_groups, floor, i, room)
            self.work += work
            self.live += len(children) - n
        else:
            children, parent = self._cell_rounds(i, batch.polys, groups, start, n_groups, floor)
        grown = children.perimeters().sum() - batch.polys.perimeters().sum()
        self.lengths[node.name] += float(grown) / 2
        return children, parent

    def _cell_rounds(self, i: int, polys: Polygons, groups: torch.Tensor, start: torch.Tensor, n_groups: torch.Tensor,
                     floor: torch.Tensor) -> tuple[Polygons, torch.Tensor]:
        """Each polygon split into the cells of its cutting windows (groups[start[p] + r], round
        r), until --max-regions stops it; with the polygon each piece came from."""
        done_polys: list[Polygons] = []
        done_parent: list[torch.Tensor] = []
        parent = torch.arange(len(polys), device=floor.device)
        for r in range(int(n_groups.max())):
            has = n_groups[parent] > r
            if not bool(has.all()):
                fin = (~has).nonzero().flatten()
                done_polys.append(polys.take(fin))
                done_parent.append(parent[fin])
                keep = has.nonzero().flatten()
                polys, parent = polys.take(keep), parent[keep]
            before = len(polys)
            polys, origin, work = cell_split(polys, groups[start[parent] + r], floor[parent], i)
            parent = parent[origin]
            self.work += int(work)
            self.live += len(polys) - before
            if self.max_regions is not None and self.live > self.max_regions:
                self.truncated = True
                break
        done_polys.append(polys)
        done_parent.append(parent)
        return Polygons.cat(done_polys), torch.cat(done_parent)

    def _relu_mask(self, polys: Polygons, z: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
        """(P, U) bool: z >= -floor at every vertex of each child (the rule `_offset_winners` applies).

        No unit of this node cuts a child any more, so each unit lies on one side of it, up to the
        floor: the value at the vertex mean (an interior point) decides wherever it is beyond the
        floor; only the rest is read at every vertex."""
        p = z.shape[0]
        coef = z.reshape(p, 3, -1)
        valid = polys.valid()
        _, zm = _at_vertex_mean(polys, coef)  # (P, U)
        on = zm > 0
        c, u = (zm.abs_() <= floor[:, None]).nonzero(as_tuple=True)  # (zm is its own: read no more)
        if c.numel():
            s = values_at(coef[c, :, u], polys.verts[c])
            on[c, u] = ((s >= -floor[c, None]) | ~valid[c]).all(1)
        return on

    def _window_picks(self, node, polys: Polygons, z: torch.Tensor, floor: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
        """(P, G): each window's first candidate that is the maximum on the whole child (the rule
        `_window_winners` applies at every vertex, then argmax's tie rule); `cells` is `node.cells`.

        A child that no window cuts has such a candidate. One that leads the others at the vertex
        mean (an interior point) by more than twice the floor is the only one that can be (a
        candidate within the floor at every vertex is, at their mean, within it of the leader),
        so it is the pick. In a window whose candidates are all exactly zero (dead ReLU units)
        every one is the maximum everywhere: the first that is not padding is the pick. Only the
        other windows are read at every vertex, candidate by candidate: no copy of every window's
        coefficients. A window that still cuts the child (the partition stopped at --max-regions)
        takes its leader at the vertex mean, as a ReLU unit takes its sign there (`_relu_mask`),
        never a padding cell's -inf."""
        p = z.shape[0]
        flat = z.reshape(p, 3, -1)
        _, at_mean = _at_vertex_mean(polys, flat)
        cand = node.candidates(at_mean.reshape(p, *z.shape[2:]))  # (P, G, k), -inf at padding
        best = cand.amax(-1, keepdim=True)
        pick = cand.argmax(-1)
        unsure = (cand >= best - 2 * floor[:, None, None]).sum(-1) > 1
        dead = _dead_windows(node, flat, z.shape[2:])
        pick = torch.where(dead, torch.isfinite(cells).to(torch.uint8).argmax(-1), pick)
        rows, windows = (unsure & ~dead).nonzero(as_tuple=True)
        if rows.numel():
            win = _window_winners(polys, _window_coefficients(node, z, rows, windows), rows, floor)
            pick[rows, windows] = torch.where(win.any(-1), win.to(torch.uint8).argmax(-1), pick[rows, windows])
        return pick

    def _kink(self, i: int, batch: _Batch, polys: Polygons, parent: torch.Tensor | None) -> _Batch:
        """The children's values: every live tensor gathered from the parent (no copy where
        `parent` is None: no polygon was cut, as in every kink node after a partition stopped at
        --max-regions; nor where the batch is one polygon, which every child reads as a view),
        then the kink applied with the mask (or window winners) that holds on the
        whole child. Only the children's own copies are written, a (leaky) ReLU's input where
        nothing reads it after (the batch's values are never written)."""
        node = self.net.nodes[i]
        if parent is None:  # (the batch's own values pass to the children: the batch is done)
            values, mag, patterns, own = dict(batch.values), batch.mag, list(batch.patterns), set(batch.own)
        elif len(batch.polys) == 1:  # the box's first split: every child reads its one parent's views
            p = len(polys)
            values = {k: v.expand(p, *v.shape[1:]) for k, v in batch.values.items()}
            mag, patterns = batch.mag.expand(p), [q.expand(p, -1) for q in batch.patterns]
            own = set()
        else:
            values = {k: v[parent] for k, v in batch.values.items()}
            mag, patterns = batch.mag[parent], [q[parent] for q in batch.patterns]
            own = set(values)
        floor = mag * self.tol
        z = values[node.inputs[0]]
        p = z.shape[0]
        # (into the children's copy of a (leaky) ReLU's input where nothing reads it after this node)
        inplace = isinstance(node, LeakyRelu) and self._writable(values, own, node.inputs[0], i)
        if isinstance(node, UnitKink):
            on = self._relu_mask(polys, _offsets(node, z), floor)  # (P, breaks * units)
            if isinstance(node, LeakyRelu):  # the same pattern on all three parts: one pass
                out = node.with_pattern(z, on, inplace=inplace)
            else:
                out = torch.stack(
                    [node.with_pattern(z[:, 0], on), node.with_pattern(z[:, 1], on, linear=True),
                     node.with_pattern(z[:, 2], on, linear=True)], 1
                )
            pattern = _pack(on)
        else:
            cells = node.cells(z[:, 0])  # (G, k), -inf at padding, which never wins
            pick = self._window_picks(node, polys, z, floor, cells)  # (P, G)
            cell = cells.gather(1, pick.t()).t().long()  # (P, G)
            out = z.reshape(p, 3, -1).gather(2, cell[:, None, :].expand(-1, 3, -1)).reshape(p, 3, *node.shape)
            pattern = pick.to(torch.uint8 if cells.shape[1] <= 256 else torch.int16).reshape(p, -1)
            if pattern.dtype != torch.uint8:
                pattern = pattern.view(torch.uint8)
        values[i] = out
        if i not in self.keeps_scale:
            mag = torch.maximum(mag, _magnitude(out, self.hu, self.hv))
        if inplace or not shares_storage(out, z):
            own.add(i)
        return _Batch(polys, values, mag, patterns + [pattern], own)

    def result(self) -> Partition:
        net = self.net
        done = self.done
        return Partition(
            polygons=done.polygons(),
            centre=self.plane.centre,
            outputs=done["outputs"],
            patterns=done["patterns"],
            mag=done["mag"],
            boundary_length={k: v if k in self.split_at else None for k, v in self.lengths.items()},
            truncated=self.truncated,
            vertices_processed=self.work,
            dtype=net.dtype,
        )


@torch.no_grad()
def partition_plane(
    network: Network, plane: Plane, *, max_regions: int | None = None, max_memory: int | None = None
) -> Partition:
    """Every activation region of `network` on the plane's box, exactly (see the module docstring).

    `max_regions` stops splitting once that many regions exist (the partition is then `truncated`
    and its count a lower bound); `max_memory` bounds the working memory in bytes by chunking the
    polygon batch (chunks never change a region).
    """
    umin, umax, vmin, vmax = plane.box
    if not (umax > umin and vmax > vmin) or not all(math.isfinite(b) for b in plane.box):
        raise BadOption(f"the slice's box {plane.box} is empty or not finite")
    if max_regions is not None and max_regions < 1:
        raise BadOption("max_regions must be >= 1")
    if max_memory is None:
        max_memory = default_max_memory(network.device)
    runner = _Partitioner(network, plane, max_regions, max_memory)
    runner.run()
    return runner.result()


# ----------------------------------------------------------------------------------------------
# what the partition says about the network's output


def _logits(part: Partition) -> torch.Tensor:
    """Output coefficients (P, 3, C) as class scores: a single output f becomes (0, f), so that
    class 1 is f > 0 and class 0 is f <= 0."""
    out = part.outputs
    if out.shape[-1] == 1:
        out = torch.cat([torch.zeros_like(out), out], -1)
    return out


def predicted_classes(part: Partition) -> torch.Tensor:
    """Argmax of the output at each region's centroid (P,)."""
    scores = _logits(part)
    c = part.polygons.centroids()
    out = []
    for lo, hi in _chunks(scores.shape[0], 4 * scores[0].numel()):
        val = scores[lo:hi, 0] + c[lo:hi, :1] * scores[lo:hi, 1] + c[lo:hi, 1:] * scores[lo:hi, 2]
        out.append(val.argmax(-1))
    return torch.cat(out) if out else scores.new_zeros(0, dtype=torch.long)


# the working memory of the decision boundary's batched steps, a chunk of polygons at a time
BOUNDARY_CHUNK_BYTES = 64 << 20


def _chunks(n: int, values_per_row: int) -> list[tuple[int, int]]:
    """Row ranges of n rows, each holding about BOUNDARY_CHUNK_BYTES of 8-byte values."""
    step = max(1, BOUNDARY_CHUNK_BYTES // max(1, 8 * values_per_row))
    return [(lo, min(n, lo + step)) for lo in range(0, n, step)]


def decision_boundary(part: Partition) -> torch.Tensor:
    """The exact pieces of the plane where the predicted class changes: segments (M, 2, 2) in
    plane coordinates.

    Inside a region the class scores f_i are affine; where the argmax is not one class on the
    whole region (`winners`), the boundary between classes i < j is the part of the line
    f_i = f_j inside the polygon where f_i >= f_k for every other k: a chord clipped to an
    interval. Across region boundaries the scores are continuous, so no other piece exists.
    Only the classes that can lead somewhere in a region take part there (`_contenders`): with C
    classes the pairs and their clipping cost C^3 per region, which a 1000-class model cannot pay.
    """
    scores = _logits(part)  # (P, 3, C)
    polys = part.polygons
    dev, dt = scores.device, scores.dtype
    cand = scores.permute(0, 2, 1)  # (P, C, 3)
    floor = part.mag * zero_tolerance(part.dtype)
    n_cls, width = cand.shape[1], polys.verts.shape[1]
    valid = polys.valid()
    act = []
    for lo, hi in _chunks(cand.shape[0], 3 * n_cls * width):
        vals = values_at(cand[lo:hi], polys.verts[lo:hi])
        act.append((~winners(vals, valid[lo:hi], floor[lo:hi]).any(-1)).nonzero().flatten() + lo)
    act = torch.cat(act) if act else torch.zeros(0, dtype=torch.long, device=dev)
    pieces = []
    scale = max(polys.verts.abs().max().item(), 1e-300) if polys.verts.numel() else 1e-300
    for lo, hi in _chunks(act.numel(), 3 * n_cls * width):
        rows = act[lo:hi]
        sub, fl = polys.take(rows), floor[rows]
        c, slot_ok = _contenders(cand[rows], sub, fl)
        k = c.shape[1]
        for a, b in _chunks(c.shape[0], 12 * k * k * max(k, width)):
            pieces.append(_chords(c[a:b], slot_ok[a:b], Polygons(sub.verts[a:b], sub.counts[a:b], sub.labels[a:b]), fl[a:b], scale))
    if not pieces:
        return torch.zeros(0, 2, 2, dtype=dt, device=dev)
    shift = torch.tensor(part.centre, dtype=dt, device=dev)
    return torch.cat(pieces) + shift


def _contenders(cand: torch.Tensor, polys: Polygons, floor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each region's classes that may lead somewhere in it, in class order: (A, K, 3) score
    lines and which of the K slots hold one (A, K). The maximum is at least L = max_i min f_i
    over the polygon everywhere in it (f_i being affine, their minima are at vertices), so a class
    whose maximum there is below L - floor never leads, and none of its chords survives."""
    vals = values_at(cand, polys.verts)  # (A, V, C)
    valid = polys.valid()[..., None]
    low = torch.where(valid, vals, torch.inf).amin(1)
    high = torch.where(valid, vals, -torch.inf).amax(1)  # (A, C)
    keep = high >= low.amax(-1, keepdim=True) - floor[:, None]
    n_cls = cand.shape[1]
    k = max(1, int(keep.sum(-1).max()))
    order = torch.arange(n_cls, device=cand.device) + n_cls * (~keep).long()
    idx = order.topk(k, -1, largest=False).values % n_cls  # (A, K): the kept classes first, in order
    slot_ok = keep.gather(1, idx)
    return cand.gather(1, idx[..., None].expand(-1, -1, 3)), slot_ok


def _chords(c: torch.Tensor, slot_ok: torch.Tensor, sub: Polygons, floor: torch.Tensor, scale: float) -> torch.Tensor:
    """The segments (M, 2, 2) where classes i < j of c (A, K, 3) tie, each above the others,
    inside the polygons `sub` (coordinates relative to the box centre); a chord shorter than
    1e-12 `scale` (the partition's largest coordinate) is rounding."""
    n_cls = c.shape[1]
    ii, jj = torch.triu_indices(n_cls, n_cls, 1, device=c.device)
    d = c[:, ii] - c[:, jj]  # (A, Q, 3): f_i - f_j
    grad = d[..., 1:]
    g2 = (grad**2).sum(-1)
    ok = (g2 > 0) & slot_ok[:, ii] & slot_ok[:, jj]
    g2s = torch.where(ok, g2, torch.ones_like(g2))
    p0 = -d[..., :1] * grad / g2s[..., None]  # a point on f_i = f_j
    direction = torch.stack([-grad[..., 1], grad[..., 0]], -1) / g2s.sqrt()[..., None]
    lo = torch.full_like(g2, -math.inf)
    hi = torch.full_like(g2, math.inf)

    def constrain(g0: torch.Tensor, g1: torch.Tensor, tol: torch.Tensor):
        nonlocal lo, hi, ok
        t = -g0 / torch.where(g1 == 0, torch.ones_like(g1), g1)
        pos, neg = g1 > 0, g1 < 0
        lo = torch.where(pos, torch.maximum(lo, t), lo)
        hi = torch.where(neg, torch.minimum(hi, t), hi)
        ok = ok & ~((g1 == 0) & (g0 < -tol))

    # inside the polygon: left of every counter-clockwise edge
    v = sub.verts
    w = v.gather(1, sub.next_vertex()[..., None].expand_as(v))
    valid = sub.valid()
    for k in range(v.shape[1]):
        e = w[:, k] - v[:, k]  # (A, 2)
        q = p0 - v[:, k, None, :]
        g0 = e[:, None, 0] * q[..., 1] - e[:, None, 1] * q[..., 0]
        g1 = e[:, None, 0] * direction[..., 1] - e[:, None, 1] * direction[..., 0]
        use = valid[:, k, None].expand_as(g0)
        constrain(torch.where(use, g0, torch.ones_like(g0)), torch.where(use, g1, torch.zeros_like(g1)), torch.zeros_like(g0))
    # f_i >= f_k for every other class k
    tol = floor[:, None]
    for k in range(n_cls):
        e = c[:, ii] - c[:, k : k + 1]  # (A, Q, 3)
        g0 = e[..., 0] + p0[..., 0] * e[..., 1] + p0[..., 1] * e[..., 2]
        g1 = direction[..., 0] * e[..., 1] + direction[..., 1] * e[..., 2]
        same = ((ii == k) | (jj == k))[None] | ~slot_ok[:, k, None]
        constrain(torch.where(same, torch.ones_like(g0), g0), torch.where(same, torch.zeros_like(g1), g1), tol)
    length = hi - lo
    keep = ok & (length > 1e-12 * scale)
    a_idx, q_idx = keep.nonzero(as_tuple=True)
    start = p0[a_idx, q_idx] + lo[a_idx, q_idx, None] * direction[a_idx, q_idx]
    end = p0[a_idx, q_idx] + hi[a_idx, q_idx, None] * direction[a_idx, q_idx]
    return torch.stack([start, end], 1)
