"""MaxPool and GlobalMaxPool are kinks: regions change where a window's argmax does (`ir.MaxPool`)."""

from regionaudit import ir
from regionaudit.importer.converters._windows import geometry, kernel_shape
from regionaudit.importer.registry import Unsupported, attr, converter


@converter("MaxPool")
def max_pool(node, ctx):
    x = ctx.data(0)
    kernel = kernel_shape(node, x)
    n = len(kernel)
    ceil_mode = bool(attr(node, "ceil_mode", 0))
    strides, dilations, pads, out = geometry(node, x.shape[-n:], kernel, ceil_mode, same_uses_dilation=False)
    return ctx.add(ir.MaxPool, [x], shape=(*x.shape[:2], *out), kernel=kernel, strides=strides, pads=pads,
                   dilations=dilations, ceil_mode=ceil_mode)


@converter("GlobalMaxPool")
def global_max_pool(node, ctx):
    x = ctx.data(0)
    spatial = tuple(x.shape[2:])
    if not spatial:
        raise Unsupported(f"input {x.shape} has no spatial axes")
    n = len(spatial)
    return ctx.add(ir.MaxPool, [x], shape=(*x.shape[:2], *([1] * n)), kernel=spatial, strides=(1,) * n,
                   pads=(0,) * (2 * n), dilations=(1,) * n)
