"""A 1-D profile of one segment: where its knots are, which layer made each, and the logits along it.

Hanin & Rolnick (2019a) draw a line through input space with its region boundaries over the
network's output; this is that picture's data. The outputs are affine between knots, so the logits
at the knots are the exact curve. Each knot's layer is the kink node the density analysis found it
at (`SegmentTrace.made_by`), so the profile credits knots exactly as `knots_per_layer` counts them.
"""

from __future__ import annotations

from regionaudit import ir
from regionaudit.analysis.density import SegmentTrace

TOP_OUTPUTS = 3


def knot_layers(net: ir.Network, trace: SegmentTrace) -> list[str]:
    """The name of the kink node that made each interior knot."""
    return [net.nodes[i].name for i in trace.made_by[1:-1].tolist()]


def segment_profile(net: ir.Network, trace: SegmentTrace, index: int) -> dict:
    """Plain data for the profile plot of segment `index`: knots, their layers, the top logits."""
    out = trace.outputs
    top = out.amax(dim=0).topk(min(TOP_OUTPUTS, out.shape[1])).indices.tolist()
    return {
        "segment": index,
        "t": [float(v) for v in trace.t.tolist()],
        "knot_layers": knot_layers(net, trace),
        "outputs": top,
        "logits": [[float(v) for v in out[:, k].tolist()] for k in top],
    }
