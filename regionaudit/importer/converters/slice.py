"""Slice: step-1 slices are a crop (`ir.Pad` with negative amounts); other steps pick elements (`ir.Take`)."""

from regionaudit.importer.converters._padded import padded
from regionaudit.importer.converters._take import taken
from regionaudit.importer.registry import Unsupported, attr, converter


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
    # onnxruntime refuses what onnx's evaluator (the index map of a strided slice) would cut short
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise Unsupported(f"starts {starts}, ends {ends}, axes {axes} and steps {steps} differ in length")
    if len({a + rank if a < 0 else a for a in axes}) != len(axes):
        raise Unsupported(f"axes {axes} name an axis twice")
    pads = [0] * (2 * rank)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = axis + rank if axis < 0 else axis
        if not 0 <= axis < rank:
            raise Unsupported(f"axis {axis} does not fit {x.shape}")
        if step != 1:  # strided or reversed: an element selection
            return taken(node, ctx)
        dim = x.shape[axis]
        lo = min(max(start + dim if start < 0 else start, 0), dim)
        hi = min(max(end + dim if end < 0 else end, 0), dim)
        if hi <= lo:
            raise Unsupported(f"the slice [{start}:{end}] of axis {axis} (size {dim}) is empty")
        pads[axis], pads[axis + rank] = -lo, hi - dim
    return padded(ctx, x, pads)
