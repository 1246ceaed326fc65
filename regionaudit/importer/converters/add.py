"""Add: data + data is `ir.Sum`; data + constant is `ir.Scale`."""

from regionaudit.importer.converters._affine import operands, scale, summed
from regionaudit.importer.registry import converter


@converter("Add")
def add(node, ctx):
    x, y, c, _ = operands(ctx)
    if y is not None:
        return summed(ctx, [x, y], (1.0, 1.0))
    return scale(ctx, x, add=c)  # after a MatMul, passes.merge_biases makes it the MatMul's bias
