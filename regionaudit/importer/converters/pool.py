"""Pools: AveragePool/GlobalAveragePool are affine (`ir.AvgPool`, `ir.GlobalAvgPool`);
MaxPool/GlobalMaxPool are kinks (`ir.MaxPool`)."""

import numpy as np

from regionaudit import ir
from regionaudit.importer.converters._windows import geometry
from regionaudit.importer.registry import Unsupported, attr, converter


def _kernel(node, x):
    kernel = tuple(attr(node, "kernel_shape", ()))
    if not kernel or len(x.shape) != len(kernel) + 2:
        raise Unsupported(f"kernel_shape {kernel} does not fit input {x.shape}")
    return kernel


def _counts(size, kernel, stride, head, tail, out, include_pad) -> np.ndarray:
    """Per-axis element counts of each window (onnxruntime's divisor, one axis at a time)."""
    starts = np.arange(out) * stride - head
    ends = starts + kernel
    lo, hi = (-head, size + tail) if include_pad else (0, size)
    return np.minimum(ends, hi) - np.maximum(starts, lo)


@converter("AveragePool")
def average_pool(node, ctx):
    x = ctx.data(0)
    kernel = _kernel(node, x)
    n = len(kernel)
    strides, dilations, pads, out = geometry(node, x.shape[-n:], kernel, bool(attr(node, "ceil_mode", 0)),
                                             same_uses_dilation=False)
    if any(d != 1 for d in dilations):
        raise Unsupported("dilated average pooling is not supported")
    include = bool(attr(node, "count_include_pad", 0))
    divisor = np.ones(())
    for i in range(n):
        c = _counts(x.shape[2 + i], kernel[i], strides[i], pads[i], pads[i + n], out[i], include)
        divisor = np.multiply.outer(divisor, c)
    if (divisor <= 0).any():
        raise Unsupported("a pooling window lies entirely in the padding")
    shape = (*x.shape[:2], *out)
    return ctx.add(ir.AvgPool, [x], shape=shape, kernel=kernel, strides=strides, pads=pads,
                   divisor=divisor.astype(np.float64))


@converter("GlobalAveragePool")
def global_average_pool(node, ctx):
    x = ctx.data(0)
    if len(x.shape) < 3:
        raise Unsupported(f"input {x.shape} has no spatial axes")
    return ctx.add(ir.GlobalAvgPool, [x], shape=(*x.shape[:2], *([1] * (len(x.shape) - 2))),
                   n_spatial=len(x.shape) - 2)


@converter("MaxPool", kink=True)
def max_pool(node, ctx):
    x = ctx.data(0)
    kernel = _kernel(node, x)
    n = len(kernel)
    ceil_mode = bool(attr(node, "ceil_mode", 0))
    strides, dilations, pads, out = geometry(node, x.shape[-n:], kernel, ceil_mode, same_uses_dilation=False)
    return ctx.add(ir.MaxPool, [x], shape=(*x.shape[:2], *out), kernel=kernel, strides=strides, pads=pads,
                   dilations=dilations, ceil_mode=ceil_mode)


@converter("GlobalMaxPool", kink=True)
def global_max_pool(node, ctx):
    x = ctx.data(0)
    spatial = tuple(x.shape[2:])
    if not spatial:
        raise Unsupported(f"input {x.shape} has no spatial axes")
    n = len(spatial)
    return ctx.add(ir.MaxPool, [x], shape=(*x.shape[:2], *([1] * n)), kernel=spatial, strides=(1,) * n,
                   pads=(0,) * (2 * n), dilations=(1,) * n)
