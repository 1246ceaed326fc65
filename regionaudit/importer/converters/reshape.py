"""Reshape: `ir.Reshape`. Opset 14 added `allowzero`."""

import math

import numpy as np

from regionaudit.importer.converters._reshaped import reshaped
from regionaudit.importer.registry import Unsupported, attr, converter


@converter("Reshape")
def reshape(node, ctx):
    x = ctx.data(0)
    target = attr(node, "shape", None)
    if target is None:
        target = ctx.const(1, "shape", float64=False)
    target = [int(d) for d in np.asarray(target).reshape(-1)]
    allowzero = attr(node, "allowzero", 0)
    shape = [x.shape[i] if d == 0 and not allowzero else d for i, d in enumerate(target)]
    if shape.count(-1) > 1 or any(d < -1 for d in shape):
        raise Unsupported(f"invalid target shape {target}")
    if -1 in shape:
        known = math.prod(d for d in shape if d != -1)
        if known == 0 or math.prod(x.shape) % known:
            raise Unsupported(f"cannot reshape {x.shape} to {target}")
        shape[shape.index(-1)] = math.prod(x.shape) // known
    return reshaped(ctx, x, shape)
