"""`ir.Reshape` (element order unchanged) and the `axes` of Squeeze / Unsqueeze."""

import math

import numpy as np

from regionaudit import ir
from regionaudit.importer.registry import Unsupported, attr


def axes_given(node, ctx, index: int):
    """`axes` from the attribute (older opsets) or from the constant input (opset >= 13)."""
    value = attr(node, "axes", None)
    if value is None:
        given = ctx.const(index, "axes", float64=False)
        value = None if given is None else [int(a) for a in np.asarray(given).reshape(-1)]
    return value


def reshaped(ctx, x, shape, suffix=None):
    shape = tuple(int(d) for d in shape)
    if math.prod(shape) != math.prod(x.shape):
        raise Unsupported(f"cannot reshape {x.shape} to {shape}")
    if shape == x.shape:
        return x
    return ctx.add(ir.Reshape, [x], shape=shape, suffix=suffix)
