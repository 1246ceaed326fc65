"""ReduceMean / ReduceSum / ReduceL1 (torch's dynamo exporter writes AdaptiveAvgPool(1) and `x.mean((2, 3))`
this way) become `ir.GlobalAvgPool` over the reduced axes (moved last first when they are not
trailing), scaled for a sum, reshaped to the kept dims.

Opset 13 (ReduceSum) and 18 (ReduceMean) moved `axes` from an attribute to an input.
"""

import math

import numpy as np

from regionaudit import ir
from regionaudit.importer.converters.elementwise import scale
from regionaudit.importer.converters.reshape import reshaped
from regionaudit.importer.registry import Unsupported, attr, converter


@converter("ReduceMean", "ReduceSum")
def reduce(node, ctx):
    return _reduced(node, ctx, ctx.data(0), mean=node.op_type == "ReduceMean")


@converter("ReduceL1", kink=True)
def reduce_l1(node, ctx):
    """The sum of |x|: an Abs (a kink, slope -1 below zero), then a ReduceSum."""
    x = ctx.add(ir.LeakyRelu, [ctx.data(0)], slope=np.array(-1.0), op_type="Abs")
    return _reduced(node, ctx, x, mean=False)


def _reduced(node, ctx, x, mean: bool):
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
    k = len(axes)
    if k == 0 or any(not 0 <= a < rank for a in axes):
        raise Unsupported(f"axes {axes} do not fit {x.shape}")
    shape_in = x.shape
    rest = [a for a in range(rank) if a not in axes]
    if axes != list(range(rank - k, rank)):  # move the reduced axes last
        perm = tuple(rest + axes)
        x = ctx.add(ir.Transpose, [x], shape=tuple(x.shape[p] for p in perm), suffix="transpose", perm=perm)
    kept = (*x.shape[: rank - k], *([1] * k))
    y = ctx.add(ir.GlobalAvgPool, [x], shape=kept, n_spatial=k)
    if not mean:
        y = scale(ctx, y, mul=np.array(float(math.prod(x.shape[rank - k :]))))
    if attr(node, "keepdims", 1):
        return reshaped(ctx, y, tuple(1 if a in axes else d for a, d in enumerate(shape_in)))
    return reshaped(ctx, y, tuple(shape_in[a] for a in rest))
