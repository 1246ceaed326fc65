"""Mul by a constant is `ir.Scale`; a product of two data tensors is not piecewise linear."""

from regionaudit.importer.converters._affine import operands, scale
from regionaudit.importer.registry import PRODUCT, Unsupported, converter


@converter("Mul")
def mul(node, ctx):
    x, y, c, _ = operands(ctx)
    if y is not None:
        raise Unsupported("product of two data tensors is not piecewise linear", kind=PRODUCT)
    return scale(ctx, x, mul=c)
