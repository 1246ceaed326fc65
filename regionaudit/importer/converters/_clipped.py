"""`ir.Clip` between constant bounds: Clip, HardSigmoid, Shrink, and Max / Min by a constant."""

import numpy as np

from regionaudit import ir
from regionaudit.importer.converters._affine import scale
from regionaudit.importer.registry import Data, Unsupported


def clipped(ctx, x: Data, lo, hi, op_type: str, shape=None) -> Data:
    """`ir.Clip` of x between constants lo / hi (None: unbounded), broadcast to `shape`.

    Where lo > hi, ONNX (like numpy and torch) gives hi: lo is lowered to hi there."""
    shape = tuple(shape or x.shape)
    try:
        lo = np.broadcast_to(-np.inf if lo is None else np.asarray(lo, np.float64), shape).copy()
        hi = np.broadcast_to(np.inf if hi is None else np.asarray(hi, np.float64), shape).copy()
    except ValueError:
        raise Unsupported(f"bounds do not broadcast to {shape}") from None
    if np.isnan(lo).any() or np.isnan(hi).any():
        raise Unsupported("a bound is NaN")
    if np.isneginf(lo).all() and np.isposinf(hi).all() and shape == x.shape:
        return x
    lo = np.minimum(lo, hi)
    if shape != x.shape:  # a bound broadcasts the data to a bigger shape: one unit per output element
        x = scale(ctx, x, add=np.zeros(shape), suffix="broadcast")
    return ctx.add(ir.Clip, [x], shape=shape, lo=lo, hi=hi, op_type=op_type)
