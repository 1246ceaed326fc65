"""ReduceMax and ReduceMin (one converter): the reduced axes moved last and flattened, then
`ir.WindowMax`. Opset 18 moved `axes` from an attribute to an input."""

import numpy as np

from regionaudit import ir
from regionaudit.importer.converters._reduced import reduced_axes
from regionaudit.importer.converters._reshaped import reshaped
from regionaudit.importer.converters._window_max import window_max
from regionaudit.importer.registry import attr, converter


@converter("ReduceMax", "ReduceMin", kink=True)
def reduce_max_min(node, ctx):
    x = ctx.data(0)
    rank = len(x.shape)
    axes = reduced_axes(node, ctx, x.shape)
    if axes is None:
        return x
    kept = [a for a in range(rank) if a not in axes]
    perm = tuple(kept + axes)
    if perm != tuple(range(rank)):
        x = ctx.add(ir.Transpose, [x], shape=tuple(x.shape[p] for p in perm), suffix="transpose", perm=perm)
    k = int(np.prod([x.shape[len(kept) + i] for i in range(len(axes))]))
    x = reshaped(ctx, x, (*x.shape[: len(kept)], k), suffix="windows")
    y = window_max(ctx, x, negate=node.op_type == "ReduceMin")
    if attr(node, "keepdims", 1):
        return reshaped(ctx, y, tuple(1 if a in axes else d for a, d in enumerate(ctx.values[node.input[0]].shape)), suffix="keepdims")
    return y
