"""Ops whose every output element is one input element (`ir.Take`): Gather / GatherElements /
GatherND with constant indices, Compress with a constant condition, Expand, Tile, DepthToSpace /
SpaceToDepth, Split, strided Slice and Pad in reflect / edge / wrap modes; and Trilu, a constant
mask (`ir.Scale`).

The index map is the op itself applied once, by onnx's reference evaluator, to the positions
0..n-1 of the input: every opset's attribute or input form, negative indices and steps, are then
exactly what the op does, with no numpy twin of it here.
"""

import math

import numpy as np
import torch

from regionaudit import ir
from regionaudit.importer.converters.elementwise import scale
from regionaudit.importer.fold import fold_node
from regionaudit.importer.registry import Data, Unsupported, converter


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


@converter("Gather", "GatherElements", "GatherND", "Expand", "Tile", "DepthToSpace", "SpaceToDepth", "Compress")
def selection(node, ctx):
    x = ctx.data(0)
    return take(ctx, x, index_maps(node, ctx)[0])


@converter("Split")
def split(node, ctx):
    """Opset 13 moved `split` from an attribute to an input; opset 18 added `num_outputs`."""
    x = ctx.data(0)
    maps = index_maps(node, ctx)
    first = None
    for i, (name, index) in enumerate(zip(node.output, maps)):
        if not name or (i > 0 and not ctx.used(i)):
            continue
        out = take(ctx, x, index, suffix=None if i == 0 else f"out{i}")
        if i == 0:
            first = out
        else:
            ctx.values[name] = out
    return first


def strided_slice(node, ctx):
    return take(ctx, ctx.data(0), index_maps(node, ctx)[0])


def padded_by_mode(node, ctx):
    """Pad in reflect / edge / wrap mode (the constant value input does not matter there)."""
    return take(ctx, ctx.data(0), index_maps(node, ctx, drop=(2,))[0])


@converter("Trilu")
def trilu(node, ctx):
    """Keeps the upper (or lower) triangle: the op applied to ones is the mask to multiply by."""
    x = ctx.data(0)
    k = ctx.input(1)
    if isinstance(k, Data):
        raise Unsupported("its diagonal offset is computed from the input", kind="discontinuous")
    mask = fold_node(node, [np.ones(x.shape, np.float64), k], ctx.opsets)[0]
    return scale(ctx, x, mul=np.asarray(mask, np.float64))
