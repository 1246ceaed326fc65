"""AveragePool: affine, `ir.AvgPool` with onnxruntime's divisor per window."""

import numpy as np

from regionaudit import ir
from regionaudit.importer.converters._windows import geometry, pool_kernel, pool_pads
from regionaudit.importer.registry import Unsupported, attr, converter


def _counts(size, kernel, stride, head, tail, out, include_pad) -> np.ndarray:
    """Per-axis element counts of each window (onnxruntime's divisor, one axis at a time)."""
    starts = np.arange(out) * stride - head
    ends = starts + kernel
    lo, hi = (-head, size + tail) if include_pad else (0, size)
    return np.minimum(ends, hi) - np.maximum(starts, lo)


@converter("AveragePool")
def average_pool(node, ctx):
    x = ctx.data(0)
    kernel = pool_kernel(node, x)
    n = len(kernel)
    strides, dilations, pads, out = geometry(node, x.shape[-n:], kernel, bool(attr(node, "ceil_mode", 0)),
                                             same_uses_dilation=False)
    pool_pads(pads, kernel)
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
