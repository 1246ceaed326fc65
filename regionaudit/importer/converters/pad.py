"""Pad: zero constant padding is `ir.Pad`; reflect / edge / wrap modes pick input elements (`ir.Take`)."""

import numpy as np

from regionaudit.importer.converters._padded import padded
from regionaudit.importer.converters._take import taken
from regionaudit.importer.registry import Unsupported, attr, converter


@converter("Pad")
def pad(node, ctx):
    """Constant mode with value 0, and reflect / edge / wrap modes (each output element is one
    input element). Opset 11 moved pads/value to inputs; opset 18 added axes, opset 19 wrap."""
    x = ctx.data(0)
    rank = len(x.shape)
    mode = attr(node, "mode", "constant")
    if mode != "constant":
        return taken(node, ctx, drop=(2,))  # the constant value input does not matter there
    if ctx.opset < 11:
        pads, value = attr(node, "pads", []), float(attr(node, "value", 0.0))
    else:
        pads = [int(p) for p in np.asarray(ctx.const(1, "pads", float64=False)).reshape(-1)]
        v = ctx.const(2, "constant_value")
        value = 0.0 if v is None or v.size == 0 else float(v.reshape(-1)[0])
        axes = ctx.const(3, "axes", float64=False)
        if axes is not None:
            axes = [int(a) + rank if a < 0 else int(a) for a in axes.reshape(-1)]
            full = [0] * (2 * rank)
            for j, a in enumerate(axes):
                full[a], full[a + rank] = pads[j], pads[j + len(axes)]
            pads = full
    if value != 0.0:
        raise Unsupported(f"padding value {value:g} is not supported (only zero)")
    if len(pads) != 2 * rank:
        raise Unsupported(f"pads {pads} do not fit {x.shape}")
    return padded(ctx, x, pads)
