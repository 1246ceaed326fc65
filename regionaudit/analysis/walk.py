"""The reference sequential walk: Gamba et al. (2022) Algorithm 2, made exact.

Start at t = 0. In each region every pre-activation is affine in t, z(t) = z(t_c) + (t - t_c) dz;
one forward pass at t_c with the region's pattern gives all of them. Step to the nearest t where
some unit of the pattern reaches zero (or a pooling window's winner is overtaken), in closed form.
There, the next region's pattern is read off layer by layer from the right-derivatives: a unit at
zero takes the sign of its directional derivative computed with the already decided patterns of
the layers before it (so a unit at zero with zero derivative is exactly zero on the next piece).
A unit is at zero when its crossing is within T_MERGE in t, or when its value is within the
rounding floor that DESIGN.md defines (16 eps x the largest |value| computed so far): a unit that
crosses slowly is computed as rounding noise around its crossing, and the noise's next sign
change is no boundary. So for a max pool: a candidate within the rounding floor of the window's
leader is tied with it, and the faster of them leads on the next piece (a window holding one line
computed along two paths has no winner change). No ε step is ever taken. One forward pass per
region; slow, simple, independent of density.py.
"""

from __future__ import annotations

import math

import torch

from regionaudit.analysis._common import T_MERGE, bounded_by_inputs, magnitude, needed_nodes, zero_tolerance
from regionaudit.analysis.density import SegmentTrace
from regionaudit.ir import MaxPool, Network, UnitKink


def _tolerance(dtype: torch.dtype) -> float:
    """Crossings closer than this in t count as one; T_MERGE unless the dtype is coarser."""
    return max(T_MERGE, 16 * torch.finfo(dtype).eps)


def _region_at(network: Network, order: list[int], a: torch.Tensor, b: torch.Tensor, t: float):
    """Value and right-derivative (in t) of every kink input at x(t), with the patterns that hold
    just to the right of t. Returns per kink node id: (kind, value, derivative, pattern)."""
    tol = _tolerance(network.dtype)
    tt = torch.tensor(t, dtype=network.dtype, device=network.device)
    x = (1 - tt) * a + tt * b
    d = b - a
    val = {0: network.prepare(x.unsqueeze(0))}
    der = {0: network.prepare(d.unsqueeze(0))}
    eps = zero_tolerance(network.dtype)
    floor = eps * magnitude(val[0])  # (a tensor: on a GPU a number read back would wait for it)
    info = {}
    for i in order[1:]:
        node = network.nodes[i]
        if isinstance(node, UnitKink):  # each breakpoint's offset plays a ReLU unit's z
            z, dz = val[node.inputs[0]], der[node.inputs[0]]
            zf, dzf = node.offsets(z).reshape(-1), node.offset_slopes(dz).reshape(-1)
            # a unit at zero here (within T_MERGE in t, or its value within the floor) follows its
            # derivative's sign
            with torch.no_grad():
                tau = torch.where(dzf != 0, -zf / torch.where(dzf != 0, dzf, 1.0), torch.inf)
            at_zero = (tau.abs() < tol) | (zf.abs() <= floor)
            on = torch.where(at_zero, dzf > 0, zf > 0)
            val[i] = node.with_pattern(z, on.reshape(1, -1))
            der[i] = node.with_pattern(dz, on.reshape(1, -1), linear=True)
            info[i] = ("relu", zf, dzf, on)
        elif isinstance(node, MaxPool):
            z, dz = val[node.inputs[0]], der[node.inputs[0]]
            c = node.candidates(z)[0]  # (W, k)
            dc = node.candidates(dz)[0]
            fin = torch.isfinite(c)
            dc = torch.where(fin, dc, 0.0)
            lead = c.argmax(-1, keepdim=True)
            cl, dl = c.gather(-1, lead), dc.gather(-1, lead)
            # candidates overtaking the leader within T_MERGE of t, or within the rounding floor
            # of it (the same value, computed as noise around it), lead on the next piece if faster
            faster = fin & (dc > dl)
            gap = torch.where(faster, (cl - c) / torch.where(faster, dc - dl, 1.0), torch.inf)
            near = (gap < tol) | (cl - c <= floor) | (torch.arange(c.shape[-1], device=c.device) == lead)
            near &= fin
            win = torch.where(near, dc, -torch.inf).argmax(-1, keepdim=True)
            v = c.gather(-1, win).reshape(1, *node.shape)
            dv = dc.gather(-1, win).reshape(1, *node.shape)
            val[i], der[i] = v, dv
            info[i] = ("maxpool", c, dc, win.squeeze(-1))
        else:
            xs = [val[k] for k in node.inputs]
            ds = [der[k] for k in node.inputs]
            val[i] = node.forward(xs)
            der[i] = node.linear(ds)
        if not bounded_by_inputs(node):
            floor = torch.maximum(floor, eps * magnitude(val[i]))
    return info


def _events(info, order):
    """Per kink node: the smallest time (after the current point) to leave the current region."""
    out = {}
    for i in order:
        if i not in info:
            continue
        kind, z, dz, pat = info[i]
        if kind == "relu":
            leaving = torch.where(pat, dz < 0, dz > 0)
            tau = torch.where(leaving, -z / torch.where(dz != 0, dz, 1.0), torch.inf)
        else:
            c, dc, win = z, dz, pat
            cw = c.gather(-1, win[:, None])
            dw = dc.gather(-1, win[:, None])
            faster = torch.isfinite(c) & (dc > dw)
            tau = torch.where(faster, (cw - c) / torch.where(faster, dc - dw, 1.0), torch.inf)
        tau = tau.clamp(min=0)
        out[i] = float(tau.min()) if tau.numel() else math.inf
    return out


@torch.no_grad()
def walk_segment(network: Network, a, b) -> SegmentTrace:
    """Knots of the single segment a -> b (each of shape input_shape) by the sequential walk."""
    a = network.prepare(torch.as_tensor(a).reshape(1, -1))[0].reshape(-1)
    b = network.prepare(torch.as_tensor(b).reshape(1, -1))[0].reshape(-1)
    order = needed_nodes(network)
    tol = _tolerance(network.dtype)
    knots = [0.0]
    credit: list[int] = []
    t = 0.0
    for _ in range(10_000_000):
        info = _region_at(network, order, a, b, t)
        ev = _events(info, order)
        if not ev:
            break
        tau = min(ev.values())
        t_next = t + tau
        if not math.isfinite(t_next) or 1.0 - t_next < tol:
            break
        first = next(i for i in order if i in ev and ev[i] <= tau + tol)
        if t_next - knots[-1] < tol:  # cannot happen: the pattern rule puts events >= T_MERGE ahead
            t = t_next
            continue
        knots.append(t_next)
        credit.append(first)
        t = t_next
    knots.append(1.0)
    tk = torch.tensor(knots, dtype=torch.float64, device=network.device)
    tt = tk.to(network.dtype)[:, None]
    outputs = network.forward((1 - tt) * a + tt * b)
    per_layer = {network.nodes[i].name: 0 for i in network.kink_ids}
    for i in credit:
        per_layer[network.nodes[i].name] += 1
    made_by = torch.tensor([-1, *credit, -1], dtype=torch.long, device=network.device)
    return SegmentTrace(t=tk, outputs=outputs, knots_per_layer=per_layer, truncated=False, made_by=made_by)
