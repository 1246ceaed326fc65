"""`ir.MatMul` of data by a constant on either side: MatMul and Gemm."""

import numpy as np

from regionaudit import ir
from regionaudit.importer.converters._reshaped import reshaped
from regionaudit.importer.registry import Data, Unsupported


def _onnx_matmul_shape(a: tuple, b: tuple) -> tuple[int, ...]:
    try:
        return np.matmul(np.zeros(a, dtype=np.int8), np.zeros(b, dtype=np.int8)).shape
    except ValueError:
        raise Unsupported(f"shapes {a} and {b} do not fit a matrix product") from None


def matmul_node(ctx, x: Data, w: np.ndarray, left: bool, bias=None, suffix=None) -> Data:
    """`x @ w` (or `w @ x` when `left`), with the probe axis kept in front of x's batch axes."""
    shape = _onnx_matmul_shape(w.shape, x.shape) if left else _onnx_matmul_shape(x.shape, w.shape)
    if w.ndim > max(len(x.shape), 2):
        # the constant's leading axes broadcast the data: the data gets as many, a vector its
        # matrix axis (as numpy does), so that the probe axis stays in front of them all
        core = (((x.shape[0], 1) if left else (1, x.shape[0])) if len(x.shape) == 1 else x.shape)
        x = reshaped(ctx, x, (1,) * (w.ndim - len(core)) + tuple(core), suffix="broadcast")
        y = ctx.add(ir.MatMul, [x], suffix=suffix, weight=w, bias=bias, weight_left=left)
        return reshaped(ctx, y, shape, suffix="vector")
    if left and len(x.shape) == 1:
        if w.ndim > 2:
            raise Unsupported(f"constant operand {w.shape} times a vector is not supported")
        w, left = w.T, False  # W @ v == v @ W^T for a vector v
    return ctx.add(ir.MatMul, [x], shape=shape, suffix=suffix, weight=w, bias=bias, weight_left=left)
