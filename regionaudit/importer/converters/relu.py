"""Kinks: Relu, LeakyRelu and PRelu become `ir.LeakyRelu` with a constant slope."""

import numpy as np

from regionaudit import ir
from regionaudit.importer.registry import Unsupported, attr, converter


@converter("Relu")
def relu(node, ctx):
    return ctx.add(ir.LeakyRelu, [ctx.data(0)], slope=np.array(0.0), op_type="Relu")


@converter("LeakyRelu")
def leaky_relu(node, ctx):
    alpha = float(attr(node, "alpha", np.float32(0.01)))
    return ctx.add(ir.LeakyRelu, [ctx.data(0)], slope=np.array(alpha), op_type="LeakyRelu")


@converter("PRelu")
def prelu(node, ctx):
    """The slope is broadcast (numpy style, as opset >= 7 defines it) to the full tensor."""
    x = ctx.data(0)
    slope = ctx.const(1, "slope")
    try:
        full = np.broadcast_to(slope, x.shape).copy()
    except ValueError:
        raise Unsupported(f"slope of shape {slope.shape} does not broadcast to {x.shape}") from None
    return ctx.add(ir.LeakyRelu, [x], slope=full, op_type="PRelu")
