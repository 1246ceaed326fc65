"""Clip (ReLU6, Hardtanh): `ir.Clip`, two breakpoints per unit."""

import numpy as np

from regionaudit.importer.converters._clipped import clipped
from regionaudit.importer.registry import Data, Unsupported, attr, converter


@converter("Clip", kink=True)
def clip(node, ctx):
    """Opsets < 11 give min / max as attributes; opset 11 made them optional constant inputs."""
    x = ctx.data(0)
    if ctx.opset < 11:
        lo, hi = attr(node, "min", None), attr(node, "max", None)
    else:
        for i, what in ((1, "min"), (2, "max")):
            if isinstance(ctx.input(i), Data):
                raise Unsupported(f"the {what} bound is computed from the input")
        lo, hi = ctx.const(1, "min"), ctx.const(2, "max")
        for v in (lo, hi):
            if v is not None and v.size != 1:
                raise Unsupported("bounds must be scalars")
    lo = None if lo is None else float(np.asarray(lo).reshape(-1)[0])
    hi = None if hi is None else float(np.asarray(hi).reshape(-1)[0])
    return clipped(ctx, x, lo, hi, "Clip")
