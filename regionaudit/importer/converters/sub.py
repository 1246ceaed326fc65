"""Sub: data - data is `ir.Sum`; with a constant on either side, `ir.Scale`."""

import numpy as np

from regionaudit.importer.converters._affine import operands, scale, summed
from regionaudit.importer.registry import converter


@converter("Sub")
def sub(node, ctx):
    x, y, c, left = operands(ctx)
    if y is not None:
        return summed(ctx, [x, y], (1.0, -1.0))
    if left:  # c - x
        return scale(ctx, x, mul=np.array(-1.0), add=c)
    return scale(ctx, x, add=-c)
