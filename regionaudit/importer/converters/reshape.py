"""Flatten, Reshape, Squeeze, Unsqueeze: element order unchanged, so all become `ir.Reshape`.

Opset 13 moved Squeeze/Unsqueeze `axes` from an attribute to an input; opset 14 added
Reshape's `allowzero`.
"""

import math

import numpy as np

from regionaudit import ir
from regionaudit.importer.registry import Unsupported, attr, converter


def _axes(node, ctx, index: int):
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


@converter("Flatten")
def flatten(node, ctx):
    x = ctx.data(0)
    axis = attr(node, "axis", 1)
    axis = axis + len(x.shape) if axis < 0 else axis
    if not 0 <= axis <= len(x.shape):
        raise Unsupported(f"axis {attr(node, 'axis')} out of range for {x.shape}")
    return reshaped(ctx, x, (math.prod(x.shape[:axis]), math.prod(x.shape[axis:])))


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


@converter("Squeeze")
def squeeze(node, ctx):
    x = ctx.data(0)
    axes = _axes(node, ctx, 1)
    rank = len(x.shape)
    if axes is None:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    axes = {a + rank if a < 0 else a for a in axes}
    if any(not 0 <= a < rank or x.shape[a] != 1 for a in axes):
        raise Unsupported(f"cannot squeeze axes {sorted(axes)} of {x.shape}")
    return reshaped(ctx, x, [d for i, d in enumerate(x.shape) if i not in axes])


@converter("Unsqueeze")
def unsqueeze(node, ctx):
    x = ctx.data(0)
    axes = _axes(node, ctx, 1)
    if axes is None:
        raise Unsupported("no axes given")
    rank = len(x.shape) + len(axes)
    axes = sorted(a + rank if a < 0 else a for a in axes)
    if len(set(axes)) != len(axes) or any(not 0 <= a < rank for a in axes):
        raise Unsupported(f"invalid axes {axes} for {x.shape}")
    shape, rest = [], iter(x.shape)
    for i in range(rank):
        shape.append(1 if i in axes else next(rest))
    return reshaped(ctx, x, shape)
