"""Pad: constant padding is `ir.Pad` (zeros), then the constant added on the border where it is not
zero (`ir.Scale`); reflect / edge / wrap modes pick input elements (`ir.Take`)."""

import numpy as np

from regionaudit.importer.converters._affine import scale
from regionaudit.importer.converters._padded import padded
from regionaudit.importer.converters._take import taken
from regionaudit.importer.registry import Unsupported, attr, converter


@converter("Pad")
def pad(node, ctx):
    """Constant mode (affine: zero padding plus the constant on the border), and reflect / edge /
    wrap modes (each output element is one input element). Opset 11 moved pads/value to inputs;
    opset 18 added axes, opset 19 wrap."""
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
    if not np.isfinite(value):
        raise Unsupported(f"padding value {value:g} is not finite")
    if len(pads) != 2 * rank:
        raise Unsupported(f"pads {pads} do not fit {x.shape}")
    y = padded(ctx, x, pads)
    if value == 0.0 or not any(p > 0 for p in pads):
        return y
    return scale(ctx, y, add=value * _border(x.shape, pads))


def _border(shape: tuple[int, ...], pads: list[int]) -> np.ndarray:
    """1 where padding put an element, 0 where the input's (cropped by negative pads) are."""
    rank = len(shape)
    kept = tuple(slice(max(0, -pads[i]), shape[i] - max(0, -pads[i + rank])) for i in range(rank))
    return np.pad(np.zeros(shape)[kept], [(max(0, pads[i]), max(0, pads[i + rank])) for i in range(rank)],
                  constant_values=1.0)
