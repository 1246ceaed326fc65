"""Distance from a point to the boundary of its activation region (Hanin & Rolnick 2019a).

On x's region R every pre-activation z_i is affine with gradient g_i = ∇z_i(x), and R is the
intersection of the half-spaces {sign z_i fixed}; so d(x) = min_i |z_i(x)| / ‖g_i‖ over units with
g_i ≠ 0. For MaxPool the constraints are the margins between each window's winner w and its other
candidates j: (z_w - z_j) / ‖∇(z_w - z_j)‖. The ‖g‖² are accumulated in forward mode: chunks of
input basis directions go through the linear parts with x's masks fixed; the Jacobian is never
stored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from regionaudit.analysis._common import bytes_per_probe, default_max_memory, needed_nodes
from regionaudit.ir import MaxPool, Network, UnitKink


@dataclass
class PointDistance:
    distance: float | None  # None when no unit has a nonzero gradient at the point
    node: str | None  # ONNX name of the kink node of the nearest unit
    unit: int | None  # flat index in that node's input tensor (MaxPool: the window index)


def _forward_masks(network: Network, order: list[int], last: dict[int, int], x: torch.Tensor):
    """Kink inputs at x: LeakyRelu -> z (P, *shape); MaxPool -> (z, candidates, winners)."""
    values = {0: x}
    kinks: dict[int, torch.Tensor] = {}
    for i in order[1:]:
        node = network.nodes[i]
        xs = [values[k] for k in node.inputs]
        if node.is_kink:
            kinks[i] = xs[0]
        values[i] = node.forward(xs)
        for k in list(values):
            if last.get(k, k) <= i:
                del values[k]
    return kinks


def _accumulate(network, order, last, kinks, basis, n_points, sq):
    """Push tangents basis (T, D) for n_points points through; add squared norms into sq."""
    t = basis.shape[0]
    tan = {0: basis[:, None, :].expand(t, n_points, basis.shape[1]).reshape(t, n_points, *network.graph_input_shape)}
    for i in order[1:]:
        node = network.nodes[i]
        ds = [tan[k] for k in node.inputs]
        if isinstance(node, UnitKink):
            z, dz = kinks[i], ds[0]
            sq[i] += (dz * dz).sum(0).reshape(n_points, -1)
            tan[i] = node.tangent(z, dz)
        elif isinstance(node, MaxPool):
            z, dz = kinks[i], ds[0]
            cand = node.candidates(z)  # (P, W, k)
            win = cand.argmax(-1, keepdim=True)
            dc = node.candidates(dz.reshape(t * n_points, *dz.shape[2:])).reshape(t, *cand.shape)
            picked = dc.gather(-1, win.unsqueeze(0).expand(t, *win.shape))
            diff = torch.where(torch.isfinite(cand), dc - picked, torch.zeros((), dtype=dc.dtype, device=dc.device))
            sq[i] += (diff * diff).sum(0)
            tan[i] = picked.reshape(t, n_points, *node.shape)
        else:
            flat = [d.reshape(t * n_points, *d.shape[2:]) for d in ds]
            y = node.linear(flat)
            tan[i] = y.reshape(t, n_points, *y.shape[1:])
        for k in list(tan):
            if last.get(k, k) <= i:
                del tan[k]


def _nearest(network, order, kinks, sq, n_points) -> list[PointDistance]:
    dev = network.device
    best = torch.full((n_points,), math.inf, dtype=torch.float64, device=dev)
    best_node = torch.full((n_points,), -1, dtype=torch.long, device=dev)
    best_unit = torch.full((n_points,), -1, dtype=torch.long, device=dev)
    for i in order:
        if i not in kinks:
            continue
        node = network.nodes[i]
        if isinstance(node, UnitKink):  # every breakpoint of a unit shares the unit's gradient
            z = node.offsets(kinks[i]).to(torch.float64)
            g2 = sq[i].to(torch.float64).repeat(1, node.breaks)
            d = torch.where(g2 > 0, z.abs() / g2.sqrt(), math.inf)
            unit_of = None
        else:
            cand = node.candidates(kinks[i])
            win = cand.argmax(-1, keepdim=True)
            margin = (cand.gather(-1, win) - cand).to(torch.float64)
            g2 = sq[i].to(torch.float64)
            ok = torch.isfinite(cand) & (g2 > 0)
            ok &= torch.arange(cand.shape[-1], device=dev) != win
            d = torch.where(ok, margin / torch.where(ok, g2, 1.0).sqrt(), math.inf).reshape(n_points, -1)
            unit_of = cand.shape[-1]
        if d.shape[1] == 0:
            continue
        m, idx = d.min(1)
        if unit_of is not None:
            idx = idx // unit_of
        elif node.breaks > 1:
            idx = idx % node.units
        better = m < best
        best = torch.where(better, m, best)
        best_node = torch.where(better, torch.full_like(best_node, i), best_node)
        best_unit = torch.where(better, idx, best_unit)
    out = []
    for dist, node_id, unit in zip(best.tolist(), best_node.tolist(), best_unit.tolist()):
        if node_id < 0 or not math.isfinite(dist):
            out.append(PointDistance(None, None, None))
        else:
            out.append(PointDistance(float(dist), network.nodes[node_id].name, int(unit)))
    return out


@torch.no_grad()
def boundary_distances(
    network: Network,
    points,
    *,
    max_memory: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[PointDistance]:
    """Distance from each point (P, *input_shape) to its activation region's boundary.

    `progress(n)`, if given, is called with the number of points just finished.
    """
    x_all = network.prepare(torch.as_tensor(points))
    n_total = x_all.shape[0]
    order = needed_nodes(network)
    last = network.last_use(order)
    dim = math.prod(network.input_shape)
    if max_memory is None:
        max_memory = default_max_memory(network.device, cpu_cap=128 << 20)
    itemsize = torch.empty((), dtype=network.dtype).element_size()
    per_probe = bytes_per_probe(network, order, itemsize, live_factor=1.5)
    cap = max(1, int(max_memory) // per_probe)  # tangent-point pairs per chunk
    n_pts = max(1, min(n_total, cap // dim)) if cap >= dim else 1
    n_dir = min(dim, max(1, cap // n_pts))
    eye = torch.eye(dim, dtype=network.dtype, device=network.device)
    results: list[PointDistance] = []
    for lo in range(0, n_total, n_pts):
        x = x_all[lo : lo + n_pts]
        p = x.shape[0]
        kinks = _forward_masks(network, order, last, x)
        sq = {}
        for i, z in kinks.items():
            node = network.nodes[i]
            if isinstance(node, MaxPool):
                sq[i] = torch.zeros(node.candidates(z).shape, dtype=network.dtype, device=network.device)
            else:
                sq[i] = torch.zeros((p, z[0].numel()), dtype=network.dtype, device=network.device)
        for d0 in range(0, dim, n_dir):
            _accumulate(network, order, last, kinks, eye[d0 : d0 + n_dir], p, sq)
        results.extend(_nearest(network, order, kinks, sq, p))
        if progress is not None:
            progress(p)
    return results
