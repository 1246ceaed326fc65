"""ReduceL1: an Abs (a kink), then a ReduceSum."""

import numpy as np

from regionaudit import ir
from regionaudit.importer.converters._reduced import reduced
from regionaudit.importer.registry import converter


@converter("ReduceL1", kink=True)
def reduce_l1(node, ctx):
    """The sum of |x|: an Abs (a kink, slope -1 below zero), then a ReduceSum."""
    x = ctx.add(ir.LeakyRelu, [ctx.data(0)], slope=np.array(-1.0), op_type="Abs")
    return reduced(node, ctx, x, mean=False)
