"""ReduceMax and ReduceMin (one converter): the reduced axes moved last and flattened, then
`ir.WindowMax`. Opset 18 moved `axes` from an attribute to an input."""

import numpy as np

from regionaudit import ir
from regionaudit.importer.converters._reshaped import reshaped
from regionaudit.importer.converters._window_max import window_max
from regionaudit.importer.registry import Unsupported, attr, converter


@converter("ReduceMax", "ReduceMin", kink=True)
def reduce_max_min(node, ctx):
    x = ctx.data(0)
    rank = len(x.shape)
    axes = attr(node, "axes", None)
    if axes is None:
        given = ctx.const(1, "axes", float64=False)
        axes = None if given is None or given.size == 0 else [int(a) for a in given.reshape(-1)]
    if axes is None:
        if attr(node, "noop_with_empty_axes", 0):
            return x
        axes = list(range(rank))
    axes = sorted({a + rank if a < 0 else a for a in axes})
    if any(not 0 <= a < rank for a in axes):
        raise Unsupported(f"axes {axes} do not fit {x.shape}")
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
