"""Split: one `ir.Take` per used output."""

import math

import numpy as np

from regionaudit.importer.converters._take import index_maps, take
from regionaudit.importer.registry import Unsupported, attr, converter


@converter("Split")
def split(node, ctx):
    """Opset 13 moved `split` from an attribute to an input; opset 18 added `num_outputs`."""
    x = ctx.data(0)
    _check_sizes(node, ctx, x.shape)
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


def _check_sizes(node, ctx, shape: tuple[int, ...]) -> None:
    """The parts must cover the axis exactly, as onnxruntime requires: onnx's evaluator, which
    gives the index maps, cuts any sizes it is given (a short or long `split`, equal parts of an
    axis they do not divide before opset 18) without a word."""
    axis = attr(node, "axis", 0)
    axis = axis + len(shape) if axis < 0 else axis
    if not 0 <= axis < len(shape):
        raise Unsupported(f"axis {attr(node, 'axis', 0)} does not fit {shape}")
    dim, n = shape[axis], len(node.output)
    given = attr(node, "split", None) if ctx.opset < 13 else ctx.const(1, "split", float64=False)
    if given is not None:
        sizes = [int(s) for s in np.asarray(given).reshape(-1)]
        if len(sizes) != n or min(sizes, default=0) < 0 or sum(sizes) != dim:
            raise Unsupported(f"split {sizes} does not cut axis {axis} of size {dim} into {n} parts")
    elif ctx.opset < 18 and dim % n:
        raise Unsupported(f"axis {axis} of size {dim} cannot be split into {n} equal parts")
    elif ctx.opset >= 18 and math.ceil(dim / n) * (n - 1) > dim:
        raise Unsupported(f"axis {axis} of size {dim} cannot be split into {n} parts of {math.ceil(dim / n)}")
