"""Unsqueeze: `ir.Reshape`. Opset 13 moved `axes` from an attribute to an input."""

from regionaudit.importer.converters._reshaped import axes_given, reshaped
from regionaudit.importer.registry import Unsupported, converter


@converter("Unsqueeze")
def unsqueeze(node, ctx):
    x = ctx.data(0)
    axes = axes_given(node, ctx, 1)
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
