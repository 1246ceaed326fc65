"""LpPool and GlobalLpPool with p = 1: the sum of |x| over each window, an Abs (a kink) and a sum
pool (`ir.AvgPool` with divisor 1). Padding adds zeros, which |x| keeps. Other p are not piecewise
linear."""

import numpy as np

from regionaudit import ir
from regionaudit.importer.converters._windows import geometry, pool_kernel
from regionaudit.importer.refusal import NOT_PL
from regionaudit.importer.registry import Unsupported, attr, converter


@converter("LpPool", "GlobalLpPool", kink=True)
def lp_pool(node, ctx):
    p = attr(node, "p", 2)
    if p != 1:
        raise Unsupported(f"p = {p} is not piecewise linear (p = 1 is: a sum of |x|)", kind=NOT_PL)
    x = ctx.data(0)
    if len(x.shape) < 3:
        raise Unsupported(f"input {x.shape} has no spatial axes")
    if node.op_type == "GlobalLpPool":
        kernel, n = tuple(x.shape[2:]), len(x.shape) - 2
        strides, pads, out = (1,) * n, (0,) * (2 * n), (1,) * n
    else:
        kernel = pool_kernel(node, x)
        n = len(kernel)
        strides, dilations, pads, out = geometry(node, x.shape[-n:], kernel, bool(attr(node, "ceil_mode", 0)))
        if any(d != 1 for d in dilations):
            raise Unsupported("dilated LpPool is not supported")
    a = ctx.add(ir.LeakyRelu, [x], slope=np.array(-1.0), op_type="Abs")
    return ctx.add(ir.AvgPool, [a], shape=(*x.shape[:2], *out), kernel=kernel, strides=strides, pads=pads,
                   divisor=np.ones(out))
