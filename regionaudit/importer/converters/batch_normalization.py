"""BatchNormalization in inference form: a per-channel `x * mul + add` (`ir.Scale`)."""

import numpy as np

from regionaudit.importer.converters._affine import scale
from regionaudit.importer.registry import Unsupported, attr, converter


@converter("BatchNormalization")
def batch_normalization(node, ctx):
    """Opsets < 9 have `spatial` (0: statistics per element); opset 14 has `training_mode`.
    Before it, a node listing more outputs than Y is in training mode (onnxruntime then normalises
    by the batch's statistics, and crashes where those outputs are left unnamed)."""
    x = ctx.data(0)
    gamma, beta = ctx.const(1, "scale"), ctx.const(2, "bias")
    mean, var = ctx.const(3, "mean"), ctx.const(4, "var")
    if attr(node, "training_mode", 0):
        raise Unsupported("training_mode is on (batch statistics depend on the batch)")
    if len(node.output) > 1:
        raise Unsupported(f"its {len(node.output)} outputs are those of training mode (batch statistics depend on the batch)")
    eps = float(attr(node, "epsilon", np.float32(1e-5)))
    if (var + eps <= 0).any():
        raise Unsupported("variance + epsilon is not positive")
    mul = gamma / np.sqrt(var + eps)
    add = beta - mean * mul
    spatial = attr(node, "spatial", 1) if ctx.opset < 9 else 1
    if len(x.shape) < 2:
        raise Unsupported(f"input {x.shape} has no channel axis")
    if spatial:
        if mul.size != x.shape[1]:
            raise Unsupported(f"{mul.size} statistics for {x.shape[1]} channels")
        tail = (1,) * (len(x.shape) - 2)
        mul, add = mul.reshape(-1, *tail), add.reshape(-1, *tail)
    return scale(ctx, x, mul=mul, add=add)
