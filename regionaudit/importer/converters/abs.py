"""Abs: `ir.LeakyRelu` of slope -1."""

import numpy as np

from regionaudit import ir
from regionaudit.importer.registry import converter


@converter("Abs", kink=True)
def abs_(node, ctx):
    """|z| is a LeakyReLU of slope -1: one breakpoint at zero."""
    return ctx.add(ir.LeakyRelu, [ctx.data(0)], slope=np.array(-1.0), op_type="Abs")
