"""Neg: `ir.Scale` by -1."""

import numpy as np

from regionaudit.importer.converters._affine import scale
from regionaudit.importer.registry import converter


@converter("Neg")
def neg(node, ctx):
    return scale(ctx, ctx.data(0), mul=np.array(-1.0))
