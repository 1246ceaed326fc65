"""Gemm with one constant operand: `ir.MatMul` with the bias, after a transpose when asked."""

from regionaudit import ir
from regionaudit.importer.converters._matmul import matmul_node
from regionaudit.importer.registry import PRODUCT, Data, Unsupported, attr, converter


@converter("Gemm")
def gemm(node, ctx):
    """alpha * op(A) @ op(B) + beta * C, with the data on either side."""
    alpha, beta = float(attr(node, "alpha", 1.0)), float(attr(node, "beta", 1.0))
    trans_a, trans_b = attr(node, "transA", 0), attr(node, "transB", 0)
    a, b = ctx.input(0), ctx.input(1)
    c = ctx.const(2, "C")
    bias = None if c is None else beta * c
    if isinstance(a, Data) and isinstance(b, Data):
        raise Unsupported("product of two data tensors is not piecewise linear", kind=PRODUCT)
    data, trans = (a, trans_a) if isinstance(a, Data) else (b, trans_b)
    if len(data.shape) != 2:
        raise Unsupported(f"Gemm needs a 2-D operand, got {data.shape}")
    if trans:
        data = ctx.add(ir.Transpose, [data], shape=data.shape[::-1], suffix="transpose", perm=(1, 0))
    w = ctx.const(1, "B") if isinstance(a, Data) else ctx.const(0, "A")
    if w.ndim != 2:  # a MatMul would broadcast it; onnxruntime refuses it
        raise Unsupported(f"Gemm needs a 2-D operand, got the constant {w.shape}")
    if isinstance(a, Data):
        return matmul_node(ctx, data, alpha * (w.T if trans_b else w), left=False, bias=bias)
    return matmul_node(ctx, data, alpha * (w.T if trans_a else w), left=True, bias=bias)
