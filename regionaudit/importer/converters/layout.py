"""Transpose, Concat, zero Pad and Slice: data moved around or cropped, never mixed."""

import numpy as np

from regionaudit import ir
from regionaudit.importer.converters.select import padded_by_mode, strided_slice
from regionaudit.importer.registry import Data, Unsupported, attr, converter


@converter("Transpose")
def transpose(node, ctx):
    x = ctx.data(0)
    rank = len(x.shape)
    perm = tuple(attr(node, "perm", list(reversed(range(rank)))))
    if sorted(perm) != list(range(rank)):
        raise Unsupported(f"perm {perm} does not fit {x.shape}")
    if perm == tuple(range(rank)):
        return x
    return ctx.add(ir.Transpose, [x], shape=tuple(x.shape[p] for p in perm), perm=perm)


@converter("Concat")
def concat(node, ctx):
    parts = [ctx.input(i) for i in range(len(node.input))]
    if not all(isinstance(p, Data) for p in parts):
        raise Unsupported("concatenating constants with data is not supported")
    rank = len(parts[0].shape)
    axis = attr(node, "axis", 0)
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank or any(len(p.shape) != rank for p in parts):
        raise Unsupported(f"axis {attr(node, 'axis')} does not fit {[p.shape for p in parts]}")
    shape = list(parts[0].shape)
    shape[axis] = sum(p.shape[axis] for p in parts)
    if len(parts) == 1:
        return parts[0]
    return ctx.add(ir.Concat, parts, shape=tuple(shape), axis=axis)


@converter("Pad")
def pad(node, ctx):
    """Constant mode with value 0, and reflect / edge / wrap modes (each output element is one
    input element). Opset 11 moved pads/value to inputs; opset 18 added axes, opset 19 wrap."""
    x = ctx.data(0)
    rank = len(x.shape)
    mode = attr(node, "mode", "constant")
    if mode != "constant":
        return padded_by_mode(node, ctx)
    if ctx.opset < 11:
        pads, value = attr(node, "pads", []), float(attr(node, "value", 0.0))
    else:
        pads = [int(p) for p in np.asarray(ctx.const(1, "pads", float64=False)).reshape(-1)]
        v = ctx.const(2, "constant_value")
        value = 0.0 if v is None or v.size == 0 else float(v.reshape(-1)[0])
        axes = ctx.const(3, "axes", float64=False)
        if axes is not None:
            axes = [int(a) + rank if a < 0 else int(a) for a in axes.reshape(-1)]
            full = [0] * (2 * rank)
            for j, a in enumerate(axes):
                full[a], full[a + rank] = pads[j], pads[j + len(axes)]
            pads = full
    if value != 0.0:
        raise Unsupported(f"padding value {value:g} is not supported (only zero)")
    if len(pads) != 2 * rank:
        raise Unsupported(f"pads {pads} do not fit {x.shape}")
    return _padded(ctx, x, pads)


def _padded(ctx, x: Data, pads: list[int]) -> Data:
    """`x` with ONNX-style pads (begin..., end...); negative amounts crop."""
    rank = len(x.shape)
    if not any(pads):
        return x
    shape = tuple(d + pads[i] + pads[i + rank] for i, d in enumerate(x.shape))
    if min(shape) <= 0:
        raise Unsupported(f"pads {pads} leave nothing of {x.shape}")
    return ctx.add(ir.Pad, [x], shape=shape, pads=tuple(pads))


@converter("Slice")
def slice_(node, ctx):
    """A crop: step-1 slices become a Pad with negative amounts. Opset 10 moved starts/ends/axes
    from attributes to inputs and added steps; ONNX clamps out-of-range bounds to the axis."""
    x = ctx.data(0)
    rank = len(x.shape)
    if ctx.opset < 10:
        starts, ends = attr(node, "starts"), attr(node, "ends")
        axes, steps = attr(node, "axes", list(range(len(starts)))), [1] * len(starts)
    else:
        starts = [int(v) for v in ctx.const(1, "starts", float64=False).reshape(-1)]
        ends = [int(v) for v in ctx.const(2, "ends", float64=False).reshape(-1)]
        axes_in, steps_in = ctx.const(3, "axes", float64=False), ctx.const(4, "steps", float64=False)
        axes = list(range(len(starts))) if axes_in is None else [int(a) for a in axes_in.reshape(-1)]
        steps = [1] * len(starts) if steps_in is None else [int(s) for s in steps_in.reshape(-1)]
    pads = [0] * (2 * rank)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = axis + rank if axis < 0 else axis
        if not 0 <= axis < rank:
            raise Unsupported(f"axis {axis} does not fit {x.shape}")
        if step != 1:  # strided or reversed: an element selection
            return strided_slice(node, ctx)
        dim = x.shape[axis]
        lo = min(max(start + dim if start < 0 else start, 0), dim)
        hi = min(max(end + dim if end < 0 else end, 0), dim)
        if hi <= lo:
            raise Unsupported(f"the slice [{start}:{end}] of axis {axis} (size {dim}) is empty")
        pads[axis], pads[axis + rank] = -lo, hi - dim
    return _padded(ctx, x, pads)
