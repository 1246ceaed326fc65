"""Flatten: `ir.Reshape` to two axes."""

import math

from regionaudit.importer.converters._reshaped import reshaped
from regionaudit.importer.registry import Unsupported, attr, converter


@converter("Flatten")
def flatten(node, ctx):
    x = ctx.data(0)
    axis = attr(node, "axis", 1)
    axis = axis + len(x.shape) if axis < 0 else axis
    if not 0 <= axis <= len(x.shape):
        raise Unsupported(f"axis {attr(node, 'axis')} out of range for {x.shape}")
    return reshaped(ctx, x, (math.prod(x.shape[:axis]), math.prod(x.shape[axis:])))
