"""Concat of data tensors: `ir.Concat`. Constants among the parts (a learned or fixed block beside
the data) are the data parts zero-padded where the constants go, then the constants' values added
there (`ir.Pad`, `ir.Scale`): affine in the input, as Pad's constant mode is."""

import numpy as np

from regionaudit import ir
from regionaudit.importer.converters._affine import scale
from regionaudit.importer.converters._padded import padded
from regionaudit.importer.registry import Data, Unsupported, attr, converter


@converter("Concat")
def concat(node, ctx):
    parts = [ctx.input(i) for i in range(len(node.input))]
    # a constant part as the op reads it: in the data's float type (refused otherwise), as float64
    parts = [p if isinstance(p, Data) else ctx.const(i, "a concatenated constant") for i, p in enumerate(parts)]
    data = [p for p in parts if isinstance(p, Data)]
    if not data:  # (a graph's constants are folded before the walk: only a stray one lands here)
        raise Unsupported("a concatenation of constants only")
    rank = len(data[0].shape)
    axis = attr(node, "axis", 0)
    axis = axis + rank if axis < 0 else axis
    shapes = [tuple(p.shape) for p in parts]
    if not 0 <= axis < rank or any(len(s) != rank for s in shapes):
        raise Unsupported(f"axis {attr(node, 'axis')} does not fit {[list(s) for s in shapes]}")
    rest = [s[:axis] + s[axis + 1:] for s in shapes]
    if any(r != rest[0] for r in rest):
        raise Unsupported(f"shapes {[list(s) for s in shapes]} differ off axis {axis}")
    if len(data) < len(parts):
        return _with_constants(ctx, parts, axis)
    if len(parts) == 1:
        return parts[0]
    shape = list(parts[0].shape)
    shape[axis] = sum(p.shape[axis] for p in parts)
    return ctx.add(ir.Concat, parts, shape=tuple(shape), axis=axis)


def _with_constants(ctx, parts: list, axis: int) -> Data:
    """Each run of constants padded onto the data part before it (the first data part for those
    before it), the padded parts concatenated, and the constants' values added where they lie."""
    if axis == 0:
        raise Unsupported("concatenating constants with data along the batch axis")
    rank = len(parts[0].shape)
    runs: list[tuple[Data, list[int]]] = []  # each data part and its pads along the axis
    before = 0  # the constants' entries before the first data part
    for p in parts:
        if isinstance(p, Data):
            pads = [0] * (2 * rank)
            pads[axis] = 0 if runs else before
            runs.append((p, pads))
        elif runs:
            runs[-1][1][rank + axis] += p.shape[axis]
        else:
            before += p.shape[axis]
    pieces = [padded(ctx, p, pads) for p, pads in runs]
    y = pieces[0]
    if len(pieces) > 1:
        shape = list(y.shape)
        shape[axis] = sum(p.shape[axis] for p in pieces)
        y = ctx.add(ir.Concat, pieces, shape=tuple(shape), axis=axis)
    added = np.concatenate([np.zeros(p.shape) if isinstance(p, Data) else p for p in parts], axis=axis)
    if not np.isfinite(added).all():
        raise Unsupported("a concatenated constant holds values that are not finite")
    return scale(ctx, y, add=added) if added.any() else y
