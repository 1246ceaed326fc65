"""Div by a nonzero constant is `ir.Scale`; division by data is not piecewise linear."""

from regionaudit.importer.converters._affine import operands, scale
from regionaudit.importer.registry import PRODUCT, Unsupported, converter


@converter("Div")
def div(node, ctx):
    x, y, c, left = operands(ctx)
    if y is not None or left:
        raise Unsupported("division by a data tensor is not piecewise linear", kind=PRODUCT)
    if (c == 0).any():
        raise Unsupported("division by a constant that holds zeros")
    return scale(ctx, x, mul=1.0 / c)
