"""LeakyRelu: `ir.LeakyRelu` with its constant slope."""

import numpy as np

from regionaudit import ir
from regionaudit.importer.registry import attr, converter


@converter("LeakyRelu", kink=True)
def leaky_relu(node, ctx):
    alpha = float(attr(node, "alpha", np.float32(0.01)))
    return ctx.add(ir.LeakyRelu, [ctx.data(0)], slope=np.array(alpha), op_type="LeakyRelu")
