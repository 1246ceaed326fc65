"""Relu: `ir.LeakyRelu` of slope 0, one breakpoint per unit at zero."""

import numpy as np

from regionaudit import ir
from regionaudit.importer.registry import converter


@converter("Relu", kink=True)
def relu(node, ctx):
    return ctx.add(ir.LeakyRelu, [ctx.data(0)], slope=np.array(0.0), op_type="Relu")
