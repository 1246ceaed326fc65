"""Closed paths (translation loops): the boundaries a loop crosses at its vertices.

Each edge of a loop is traced as a segment, and a segment's crossing at an end point is the end
point (DESIGN.md, "Exact 1-D analysis"): right for a segment, whose ends are its own, but a loop's
vertex lies inside the path. Where the loop turns exactly on a boundary (at a whole-pixel shift,
zero padding makes units and max-pool candidates change exactly there), neither edge counts it.
So the pattern of each edge's last piece is compared with that of the next edge's first piece,
each read at the piece's midpoint with the rounding floor of the 1-D analysis: a unit crosses at
the vertex where its offsets have strictly opposite signs beyond the floor, and a max pool where
no candidate leads its window (within the floor) on both sides.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from regionaudit.analysis._common import bounded_by_inputs, check_fits, default_max_memory, magnitude, zero_tolerance
from regionaudit.analysis.density import SegmentTrace
from regionaudit.ir import MaxPool, Network, UnitKink


def vertex_crossings(network: Network, a: np.ndarray, b: np.ndarray, traces: list[SegmentTrace],
                     max_memory: int | None = None) -> list[str | None]:
    """For each vertex k of a closed path whose edges run from a[k] to b[k] (vertex k ends edge
    k - 1 and starts edge k, cyclically): the name of the first kink node (in topological order)
    whose pattern changes there, or None. None too after an edge that --max-knots stopped: its
    last kept piece runs over regions it did not trace, so a difference there is not the
    vertex's (the loop's count is a lower bound then anyway). Vertices are read a chunk at a time
    within `max_memory` (every layer of two probes per vertex is held); each on its own."""
    n = len(traces)
    if n < 2:
        return [None] * n
    a = torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float64).reshape(n, -1)
    b = torch.as_tensor(np.ascontiguousarray(b), dtype=torch.float64).reshape(n, -1)
    last = torch.tensor([float(tr.t[-2] + tr.t[-1]) / 2 for tr in traces], dtype=torch.float64)
    first = torch.tensor([float(tr.t[0] + tr.t[1]) / 2 for tr in traces], dtype=torch.float64)
    itemsize = torch.empty((), dtype=network.dtype).element_size()
    per_vertex = 2 * itemsize * sum(math.prod(node.shape) for node in network.nodes)
    budget = max_memory if max_memory is not None else default_max_memory(network.device)
    check_fits(per_vertex, max_memory, network.device, "one vertex of a loop (every layer at two probes)")
    step = max(1, budget // per_vertex)
    credited: list[str | None] = []
    for lo in range(0, n, step):
        k = torch.arange(lo, min(n, lo + step))
        e = (k - 1) % n  # vertex k: on the last piece of edge k - 1, and on the first of edge k
        before = a[e] + last[e, None] * (b[e] - a[e])
        after = a[k] + first[k, None] * (b[k] - a[k])
        credited += _vertex_nodes(network, before, after)
    return [None if traces[k - 1].truncated else name for k, name in enumerate(credited)]


def _vertex_nodes(network: Network, before: torch.Tensor, after: torch.Tensor) -> list[str | None]:
    """`vertex_crossings` for the vertices whose probes on either side are `before` and `after`."""
    n = before.shape[0]
    values = network.forward_all(torch.cat([before, after]).to(network.dtype).reshape(2 * n, *network.input_shape))
    mag = magnitude(values[0])
    credited: list[str | None] = [None] * n
    for i, node in enumerate(network.nodes[1:], start=1):
        if not bounded_by_inputs(node):
            mag = torch.maximum(mag, magnitude(values[i]))
        if not node.is_kink:
            continue
        floor = torch.maximum(mag[:n], mag[n:]) * zero_tolerance(network.dtype)
        z = values[node.inputs[0]]
        changed = _changed(node, z, floor, n)
        for k in changed.nonzero().flatten().tolist():
            credited[k] = credited[k] or node.name
    return credited


def _changed(node, z: torch.Tensor, floor: torch.Tensor, n: int) -> torch.Tensor:
    """(n,) bool: whether the node's pattern differs between probes k and n + k of its input z."""
    if isinstance(node, UnitKink):
        off = node.offsets(z)
        sign = (off > floor.repeat(2)[:, None]).to(torch.int8) - (off < -floor.repeat(2)[:, None]).to(torch.int8)
        return (sign[:n] * sign[n:] < 0).any(-1)
    if isinstance(node, MaxPool):
        cand = node.candidates(z)  # (2n, W, k)
        lead = cand >= cand.amax(-1, keepdim=True) - floor.repeat(2)[:, None, None]
        return ~(lead[:n] & lead[n:]).any(-1).all(-1)
    raise TypeError(f"no pattern for kink node {node.kind}")  # (the IR has no other kink nodes)
