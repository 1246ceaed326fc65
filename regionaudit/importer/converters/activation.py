"""Elementwise kinks: Relu, LeakyRelu, PRelu and Abs become `ir.LeakyRelu` with a constant slope;
Clip (ReLU6, Hardtanh) and HardSigmoid become `ir.Clip` (two breakpoints per unit)."""

import numpy as np

from regionaudit import ir
from regionaudit.importer.converters.elementwise import scale
from regionaudit.importer.registry import Data, Unsupported, attr, converter


@converter("Relu", kink=True)
def relu(node, ctx):
    return ctx.add(ir.LeakyRelu, [ctx.data(0)], slope=np.array(0.0), op_type="Relu")


@converter("LeakyRelu", kink=True)
def leaky_relu(node, ctx):
    alpha = float(attr(node, "alpha", np.float32(0.01)))
    return ctx.add(ir.LeakyRelu, [ctx.data(0)], slope=np.array(alpha), op_type="LeakyRelu")


@converter("PRelu", kink=True)
def prelu(node, ctx):
    """The slope is broadcast (numpy style, as opset >= 7 defines it) to the full tensor."""
    x = ctx.data(0)
    slope = ctx.const(1, "slope")
    try:
        full = np.broadcast_to(slope, x.shape).copy()
    except ValueError:
        raise Unsupported(f"slope of shape {slope.shape} does not broadcast to {x.shape}") from None
    return ctx.add(ir.LeakyRelu, [x], slope=full, op_type="PRelu")


@converter("Abs", kink=True)
def abs_(node, ctx):
    """|z| is a LeakyReLU of slope -1: one breakpoint at zero."""
    return ctx.add(ir.LeakyRelu, [ctx.data(0)], slope=np.array(-1.0), op_type="Abs")


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


@converter("Clip", kink=True)
def clip(node, ctx):
    """Opsets < 11 give min / max as attributes; opset 11 made them optional constant inputs."""
    x = ctx.data(0)
    if ctx.opset < 11:
        lo, hi = attr(node, "min", None), attr(node, "max", None)
    else:
        for i, what in ((1, "min"), (2, "max")):
            if isinstance(ctx.input(i), Data):
                raise Unsupported(f"the {what} bound is computed from the input")
        lo, hi = ctx.const(1, "min"), ctx.const(2, "max")
        for v in (lo, hi):
            if v is not None and v.size != 1:
                raise Unsupported("bounds must be scalars")
    lo = None if lo is None else float(np.asarray(lo).reshape(-1)[0])
    hi = None if hi is None else float(np.asarray(hi).reshape(-1)[0])
    return clipped(ctx, x, lo, hi, "Clip")


@converter("HardSigmoid", kink=True)
def hard_sigmoid(node, ctx):
    """max(0, min(1, alpha z + beta)): its affine part, then a clip to [0, 1]."""
    alpha = float(attr(node, "alpha", np.float32(0.2)))
    beta = float(attr(node, "beta", np.float32(0.5)))
    inner = scale(ctx, ctx.data(0), mul=np.array(alpha), add=np.array(beta), suffix="affine")
    return clipped(ctx, inner, 0.0, 1.0, "HardSigmoid")


@converter("Shrink", kink=True)
def shrink(node, ctx):
    """Soft shrinkage (bias == lambd) is `x - clip(x, -lambd, lambd)`: continuous, two kinks per
    unit. Any other bias jumps by lambd - bias at +-lambd: a discontinuity."""
    lambd = float(attr(node, "lambd", np.float32(0.5)))
    bias = float(attr(node, "bias", np.float32(0.0)))
    x = ctx.data(0)
    if bias != lambd:
        raise Unsupported(f"bias {bias:g} differs from lambd {lambd:g}: it jumps at +-lambd", kind="discontinuous")
    if lambd <= 0:
        return x
    inner = clipped(ctx, x, -lambd, lambd, "Shrink")
    return ctx.add(ir.Sum, [x, inner], shape=x.shape, coeffs=(1.0, -1.0), suffix="residual")
