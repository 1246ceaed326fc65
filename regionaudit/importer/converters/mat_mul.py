"""MatMul with one constant operand: `ir.MatMul` (weight on the right or left)."""

from regionaudit.importer.converters._matmul import matmul_node
from regionaudit.importer.registry import PRODUCT, Data, Unsupported, converter


@converter("MatMul")
def mat_mul(node, ctx):
    a, b = ctx.input(0), ctx.input(1)
    if isinstance(a, Data) and isinstance(b, Data):
        raise Unsupported("product of two data tensors is not piecewise linear", kind=PRODUCT)
    if isinstance(a, Data):
        return matmul_node(ctx, a, ctx.const(1, "B"), left=False)
    return matmul_node(ctx, b, ctx.const(0, "A"), left=True)
