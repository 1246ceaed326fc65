"""Max / Min of tensors and ReduceMax / ReduceMin: kinks where the leading candidate changes.

Several data tensors are stacked on a new last axis (constants among them as one more candidate)
and reduced by `ir.WindowMax` (analysed like a MaxPool window of the inputs); one data tensor and
constants make an `ir.Clip` with that bound, so `Max(x, 0)` is a ReLU. Min is Max between two negations. Opset 8 added broadcasting to Max/Min;
opset 18 moved ReduceMax/ReduceMin `axes` from an attribute to an input.
"""

import numpy as np

from regionaudit import ir
from regionaudit.importer.converters.activation import clipped
from regionaudit.importer.converters.elementwise import scale
from regionaudit.importer.converters.reshape import reshaped
from regionaudit.importer.registry import Data, Unsupported, attr, converter


def _window_max(ctx, x: Data, negate: bool) -> Data:
    """Max (Min when `negate`) over the last axis of x."""
    if negate:
        x = scale(ctx, x, mul=np.array(-1.0), suffix="neg")
    y = ctx.add(ir.WindowMax, [x], shape=x.shape[:-1], kernel=(x.shape[-1],), strides=(1,), pads=(0, 0),
                dilations=(1,))
    return scale(ctx, y, mul=np.array(-1.0), suffix="unneg") if negate else y


@converter("Max", "Min", kink=True)
def max_min(node, ctx):
    values = [ctx.input(i) for i in range(len(node.input)) if node.input[i]]
    data = [v for v in values if isinstance(v, Data)]
    consts = [np.asarray(v, np.float64) for v in values if not isinstance(v, Data)]
    is_max = node.op_type == "Max"
    try:
        shape = tuple(np.broadcast_shapes(*(v.shape for v in values)))
    except ValueError:
        raise Unsupported(f"shapes {[v.shape for v in values]} do not broadcast") from None
    never = -np.inf if is_max else np.inf  # a constant that never leads changes nothing
    consts = [v for v in consts if not (v == never).all()]
    if any(not np.isfinite(v).all() for v in consts):
        raise Unsupported("a constant operand holds infinite or NaN values")
    c = None
    for other in consts:
        c = other if c is None else (np.maximum(c, other) if is_max else np.minimum(c, other))
    if len(data) == 1:
        x = data[0]
        if c is None:
            return x
        if is_max and not c.any() and shape == x.shape:  # Max(x, 0): a ReLU
            return ctx.add(ir.LeakyRelu, [x], slope=np.array(0.0), op_type="Max")
        return clipped(ctx, x, c if is_max else None, None if is_max else c, node.op_type, shape)
    const = None if c is None else np.broadcast_to(c, shape).copy()  # one more candidate
    stacked = ctx.add(ir.Stack, data, shape=(*shape, len(data) + (c is not None)), suffix="stack", const=const)
    return _window_max(ctx, stacked, negate=not is_max)


@converter("ReduceMax", "ReduceMin", kink=True)
def reduce_max_min(node, ctx):
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
    if any(not 0 <= a < rank for a in axes):
        raise Unsupported(f"axes {axes} do not fit {x.shape}")
    kept = [a for a in range(rank) if a not in axes]
    perm = tuple(kept + axes)
    if perm != tuple(range(rank)):
        x = ctx.add(ir.Transpose, [x], shape=tuple(x.shape[p] for p in perm), suffix="transpose", perm=perm)
    k = int(np.prod([x.shape[len(kept) + i] for i in range(len(axes))]))
    x = reshaped(ctx, x, (*x.shape[: len(kept)], k), suffix="windows")
    y = _window_max(ctx, x, negate=node.op_type == "ReduceMin")
    if attr(node, "keepdims", 1):
        return reshaped(ctx, y, tuple(1 if a in axes else d for a, d in enumerate(ctx.values[node.input[0]].shape)), suffix="keepdims")
    return y
