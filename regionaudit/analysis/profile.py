"""A 1-D profile of one segment: where its knots are, which layer made each, and the logits along it.

Hanin & Rolnick (2019a) draw a line through input space with its region boundaries over the
network's output; this is that picture's data. The outputs are affine between knots, so the logits
at the knots are the exact curve. Each knot's layer is the first kink node (in topological order)
with a unit at zero there, the same rule the density analysis credits knots by.
"""

from __future__ import annotations

import torch

from regionaudit import ir
from regionaudit.analysis.density import SegmentTrace

TOP_OUTPUTS = 3
_ZERO = 1e-7  # relative: a unit within this fraction of its layer's scale is at its kink


def knot_layers(net: ir.Network, a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> list[str | None]:
    """The kink node that made each interior knot at positions t (None where none is found)."""
    inner = t[1:-1]
    if inner.numel() == 0:
        return []
    x = a.reshape(1, -1) + inner.to(a).unsqueeze(1) * (b - a).reshape(1, -1)  # t lives on the network's device
    values = net.forward_all(x)
    found: list[str | None] = [None] * inner.numel()
    for i in net.kink_ids:
        node = net.nodes[i]
        z = values[node.inputs[0]].reshape(inner.numel(), -1)
        if isinstance(node, ir.UnitKink):  # the offsets whose sign changes are its kinks
            off = node.offsets(values[node.inputs[0]])
            finite = torch.isfinite(off)
            scale = torch.maximum(z.abs().amax(dim=1), off.abs().where(finite, 0).amax(dim=1)).clamp(min=1e-300)
            near = (off.abs().where(finite, torch.inf) / scale.unsqueeze(1)).amin(dim=1) < _ZERO
        elif isinstance(node, ir.MaxPool):
            cand = node.candidates(values[node.inputs[0]]).nan_to_num(neginf=-1e300)
            top2 = cand.topk(2, dim=-1).values if cand.shape[-1] > 1 else torch.cat([cand, cand - 1], -1)
            gap = (top2[..., 0] - top2[..., 1]).reshape(inner.numel(), -1)
            scale = cand.abs().clamp(max=1e300).reshape(inner.numel(), -1).amax(dim=1).clamp(min=1e-300)
            near = (gap / scale.unsqueeze(1)).amin(dim=1) < _ZERO
        else:
            continue
        for k in torch.nonzero(near).flatten().tolist():
            if found[k] is None:
                found[k] = node.name
    return found


def segment_profile(net: ir.Network, a: torch.Tensor, b: torch.Tensor, trace: SegmentTrace, index: int) -> dict:
    """Plain data for the profile plot of segment `index`: knots, their layers, the top logits."""
    out = trace.outputs
    top = out.amax(dim=0).topk(min(TOP_OUTPUTS, out.shape[1])).indices.tolist()
    return {
        "segment": index,
        "t": [float(v) for v in trace.t.tolist()],
        "knot_layers": knot_layers(net, a, b, trace.t),
        "outputs": top,
        "logits": [[float(v) for v in out[:, k].tolist()] for k in top],
    }
