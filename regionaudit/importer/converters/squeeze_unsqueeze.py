"""Squeeze and Unsqueeze: element order unchanged, so both become `ir.Reshape`.

Opset 13 moved their `axes` from an attribute to an input.
"""

import numpy as np

from regionaudit.importer.converters.reshape_flatten import reshaped
from regionaudit.importer.registry import Unsupported, attr, converter


def _axes(node, ctx, index: int):
    """`axes` from the attribute (older opsets) or from the constant input (opset >= 13)."""
    value = attr(node, "axes", None)
    if value is None:
        given = ctx.const(index, "axes", float64=False)
        value = None if given is None else [int(a) for a in np.asarray(given).reshape(-1)]
    return value


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
