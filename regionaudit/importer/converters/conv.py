"""Conv (1-D/2-D/3-D, groups, strides, dilations, explicit or auto pads) becomes `ir.Conv`."""

from regionaudit import ir
from regionaudit.importer.converters._windows import geometry
from regionaudit.importer.registry import Unsupported, attr, converter


@converter("Conv")
def conv(node, ctx):
    x = ctx.data(0)
    w, b = ctx.const(1, "weight"), ctx.const(2, "bias")
    groups = attr(node, "group", 1)
    kernel = tuple(w.shape[2:])
    if len(x.shape) != w.ndim or not 1 <= len(kernel) <= 3:
        raise Unsupported(f"input {x.shape} does not fit weight {w.shape}")
    if x.shape[-len(kernel) - 1] != w.shape[1] * groups or w.shape[0] % groups:
        raise Unsupported(f"input channels {x.shape} do not fit weight {w.shape} with group {groups}")
    if tuple(attr(node, "kernel_shape", kernel)) != kernel:
        raise Unsupported(f"kernel_shape {attr(node, 'kernel_shape')} differs from the weight's {kernel}")
    strides, dilations, pads, out = geometry(node, x.shape[-len(kernel):], kernel)
    shape = (*x.shape[: -len(kernel) - 1], w.shape[0], *out)
    return ctx.add(ir.Conv, [x], shape=shape, weight=w, bias=b, strides=strides, pads=pads,
                   dilations=dilations, groups=groups)
