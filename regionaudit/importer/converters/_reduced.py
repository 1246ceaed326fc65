"""A sum or mean over axes as `ir.GlobalAvgPool` over the reduced axes (moved last first when they
are not trailing), scaled for a sum, reshaped to the kept dims: ReduceMean, ReduceSum, ReduceL1."""

import math

import numpy as np

from regionaudit import ir
from regionaudit.importer.converters._affine import scale
from regionaudit.importer.converters._reshaped import reshaped
from regionaudit.importer.registry import Unsupported, attr


def reduced_axes(node, ctx, shape: tuple[int, ...]) -> list[int] | None:
    """The axes a Reduce* node reduces, non-negative and sorted; None when it is the identity
    (no axes and `noop_with_empty_axes`). Opset 18 moved `axes` from an attribute to an input."""
    rank = len(shape)
    axes = attr(node, "axes", None)
    if axes is None:
        given = ctx.const(1, "axes", float64=False)
        axes = None if given is None or given.size == 0 else [int(a) for a in given.reshape(-1)]
    if axes is None:
        if attr(node, "noop_with_empty_axes", 0):
            return None
        axes = list(range(rank))
    axes = sorted({a + rank if a < 0 else a for a in axes})
    if not axes or any(not 0 <= a < rank for a in axes):
        raise Unsupported(f"axes {axes} do not fit {shape}")
    return axes


def reduced(node, ctx, x, mean: bool):
    rank = len(x.shape)
    axes = reduced_axes(node, ctx, x.shape)
    if axes is None:
        return x
    k = len(axes)
    shape_in = x.shape
    rest = [a for a in range(rank) if a not in axes]
    if axes != list(range(rank - k, rank)):  # move the reduced axes last
        perm = tuple(rest + axes)
        x = ctx.add(ir.Transpose, [x], shape=tuple(x.shape[p] for p in perm), suffix="transpose", perm=perm)
    kept = (*x.shape[: rank - k], *([1] * k))
    y = ctx.add(ir.GlobalAvgPool, [x], shape=kept, n_spatial=k)
    if not mean:
        y = scale(ctx, y, mul=np.array(float(math.prod(x.shape[rank - k :]))))
    if attr(node, "keepdims", 1):
        return reshaped(ctx, y, tuple(1 if a in axes else d for a, d in enumerate(shape_in)))
    return reshaped(ctx, y, tuple(shape_in[a] for a in rest))
