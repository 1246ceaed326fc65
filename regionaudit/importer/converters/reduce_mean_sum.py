"""ReduceMean / ReduceSum over trailing axes (torch's dynamo exporter writes AdaptiveAvgPool(1) and
`x.mean((2, 3))` this way) become `ir.GlobalAvgPool`, scaled for a sum, reshaped without keepdims.

Opset 13 (ReduceSum) and 18 (ReduceMean) moved `axes` from an attribute to an input.
"""

import math

import numpy as np

from regionaudit import ir
from regionaudit.importer.converters.add_sub_mul_div_neg_sum import scale
from regionaudit.importer.converters.reshape_flatten import reshaped
from regionaudit.importer.registry import Unsupported, attr, converter


@converter("ReduceMean", "ReduceSum")
def reduce(node, ctx):
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
    k = len(axes)
    if axes != list(range(rank - k, rank)) or k == 0:
        raise Unsupported(f"only a reduction over trailing axes is supported, got axes {axes} of {x.shape}")
    kept = (*x.shape[: rank - k], *([1] * k))
    y = ctx.add(ir.GlobalAvgPool, [x], shape=kept, n_spatial=k)
    if node.op_type == "ReduceSum":
        y = scale(ctx, y, mul=np.array(float(math.prod(x.shape[rank - k :]))))
    return y if attr(node, "keepdims", 1) else reshaped(ctx, y, x.shape[: rank - k])
