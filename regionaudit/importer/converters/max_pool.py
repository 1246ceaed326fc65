"""MaxPool: kinks, `ir.MaxPool`."""

from regionaudit import ir
from regionaudit.importer.converters._windows import geometry, pool_kernel, pool_pads
from regionaudit.importer.registry import attr, converter


@converter("MaxPool", kink=True)
def max_pool(node, ctx):
    x = ctx.data(0)
    kernel = pool_kernel(node, x)
    n = len(kernel)
    ceil_mode = bool(attr(node, "ceil_mode", 0))
    strides, dilations, pads, out = geometry(node, x.shape[-n:], kernel, ceil_mode, same_uses_dilation=False)
    pool_pads(pads, kernel)
    return ctx.add(ir.MaxPool, [x], shape=(*x.shape[:2], *out), kernel=kernel, strides=strides, pads=pads,
                   dilations=dilations, ceil_mode=ceil_mode)
