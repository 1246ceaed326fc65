"""Max and Min of tensors (one converter): kinks where the leading candidate changes.

Several data tensors are stacked on a new last axis (constants among them as one more candidate)
and reduced by `ir.WindowMax` (analysed like a MaxPool window of the inputs); one data tensor and
constants make an `ir.Clip` with that bound, so `Max(x, 0)` is a ReLU. Min is Max between two
negations. Opset 8 added broadcasting.
"""

import numpy as np

from regionaudit import ir
from regionaudit.importer.converters._clipped import clipped
from regionaudit.importer.converters._window_max import window_max
from regionaudit.importer.registry import Data, Unsupported, converter


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
    return window_max(ctx, stacked, negate=not is_max)
