"""Ops whose every output element is one input element become `ir.Take`.

The index map is the op itself applied once, by onnx's reference evaluator, to the positions
0..n-1 of the input: every opset's attribute or input form, negative indices and steps, are then
exactly what the op does, with no numpy twin of it here.
"""

import math

import numpy as np
import torch

from regionaudit import ir
from regionaudit.importer.fold import fold_node
from regionaudit.importer.registry import Data, Unsupported


def take(ctx, x: Data, index: np.ndarray, suffix=None) -> Data:
    index = np.asarray(index)
    if index.size == 0:
        raise Unsupported(f"the result of shape {index.shape} is empty")
    if index.shape == x.shape and (index.reshape(-1) == np.arange(index.size)).all():
        return x
    return ctx.add(ir.Take, [x], shape=index.shape, suffix=suffix, index=torch.from_numpy(index.astype(np.int64)))


def index_maps(node, ctx, drop: tuple[int, ...] = ()) -> list[np.ndarray]:
    """The node's outputs on the input positions: one index array per output (input 0 is data,
    the others must be constants; inputs in `drop` are left out)."""
    x = ctx.data(0)
    inputs = [np.arange(math.prod(x.shape), dtype=np.int64).reshape(x.shape)]
    for i in range(1, len(node.input)):
        if i in drop:
            inputs.append(None)
            continue
        value = ctx.input(i)
        if isinstance(value, Data):
            raise Unsupported(f"input {i} is computed from the input (data-dependent indexing)", kind="discontinuous")
        inputs.append(value)
    return fold_node(node, inputs, ctx.opsets)


def taken(node, ctx, drop: tuple[int, ...] = ()) -> Data:
    """The node's first output as an `ir.Take` of its data input."""
    return take(ctx, ctx.data(0), index_maps(node, ctx, drop)[0])
