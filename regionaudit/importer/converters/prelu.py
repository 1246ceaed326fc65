"""PRelu with a constant slope: `ir.LeakyRelu` with the slope broadcast to the tensor."""

import numpy as np

from regionaudit import ir
from regionaudit.importer.registry import Unsupported, converter


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
