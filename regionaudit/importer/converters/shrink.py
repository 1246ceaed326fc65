"""Shrink (soft shrinkage): `x - clip(x, -lambd, lambd)`."""

import numpy as np

from regionaudit import ir
from regionaudit.importer.converters._clipped import clipped
from regionaudit.importer.registry import Unsupported, attr, converter


@converter("Shrink", kink=True)
def shrink(node, ctx):
    """Soft shrinkage (bias == lambd) is `x - clip(x, -lambd, lambd)`: continuous, two kinks per
    unit. Any other bias jumps by lambd - bias at +-lambd: a discontinuity."""
    lambd = float(attr(node, "lambd", np.float32(0.5)))
    bias = float(attr(node, "bias", np.float32(0.0)))
    x = ctx.data(0)
    if bias != lambd:
        raise Unsupported(f"bias {bias:g} differs from lambd {lambd:g}: it jumps at +-lambd", kind="discontinuous")
    if lambd <= 0:
        return x
    inner = clipped(ctx, x, -lambd, lambd, "Shrink")
    return ctx.add(ir.Sum, [x, inner], shape=x.shape, coeffs=(1.0, -1.0), suffix="residual")
