"""Squeeze: `ir.Reshape`. Opset 13 moved `axes` from an attribute to an input."""

from regionaudit.importer.converters._reshaped import axes_given, reshaped
from regionaudit.importer.registry import Unsupported, converter


@converter("Squeeze")
def squeeze(node, ctx):
    x = ctx.data(0)
    axes = axes_given(node, ctx, 1)
    rank = len(x.shape)
    if axes is None:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    axes = {a + rank if a < 0 else a for a in axes}
    if any(not 0 <= a < rank or x.shape[a] != 1 for a in axes):
        raise Unsupported(f"cannot squeeze axes {sorted(axes)} of {x.shape}")
    return reshaped(ctx, x, [d for i, d in enumerate(x.shape) if i not in axes])
