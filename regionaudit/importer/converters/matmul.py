"""Gemm and MatMul with one constant operand become `ir.MatMul` (weight on the right or left)."""

import numpy as np

from regionaudit import ir
from regionaudit.importer.registry import PRODUCT, Data, Unsupported, attr, converter


def _onnx_matmul_shape(a: tuple, b: tuple) -> tuple[int, ...]:
    try:
        return np.matmul(np.zeros(a, dtype=np.int8), np.zeros(b, dtype=np.int8)).shape
    except ValueError:
        raise Unsupported(f"shapes {a} and {b} do not fit a matrix product") from None


def matmul_node(ctx, x: Data, w: np.ndarray, left: bool, bias=None, suffix=None) -> Data:
    """`x @ w` (or `w @ x` when `left`), with the probe axis kept in front of x's batch axes."""
    shape = _onnx_matmul_shape(w.shape, x.shape) if left else _onnx_matmul_shape(x.shape, w.shape)
    if w.ndim > max(len(x.shape), 2):
        raise Unsupported(f"constant operand {w.shape} has more axes than the data {x.shape}")
    if left and len(x.shape) == 1:
        if w.ndim > 2:
            raise Unsupported(f"constant operand {w.shape} times a vector is not supported")
        w, left = w.T, False  # W @ v == v @ W^T for a vector v
    return ctx.add(ir.MatMul, [x], shape=shape, suffix=suffix, weight=w, bias=bias, weight_left=left)


@converter("MatMul")
def matmul(node, ctx):
    a, b = ctx.input(0), ctx.input(1)
    if isinstance(a, Data) and isinstance(b, Data):
        raise Unsupported("product of two data tensors is not piecewise linear", kind=PRODUCT)
    if isinstance(a, Data):
        return matmul_node(ctx, a, ctx.const(1, "B"), left=False)
    return matmul_node(ctx, b, ctx.const(0, "A"), left=True)


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
    if isinstance(a, Data):
        w = ctx.const(1, "B")
        return matmul_node(ctx, data, alpha * (w.T if trans_b else w), left=False, bias=bias)
    w = ctx.const(0, "A")
    return matmul_node(ctx, data, alpha * (w.T if trans_a else w), left=True, bias=bias)
