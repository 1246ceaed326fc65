"""Affine maps by constants (`ir.Scale`) and sums of data tensors (`ir.Sum`), numpy-broadcast;
shared by the arithmetic ops and every converter that scales or shifts its input."""

import numpy as np

from regionaudit import ir
from regionaudit.importer.registry import Data, Unsupported


def operands(ctx):
    """(data, other data or None, constant or None, constant on the left) of a binary op."""
    a, b = ctx.input(0), ctx.input(1)
    if isinstance(a, Data) and isinstance(b, Data):
        return a, b, None, None
    if isinstance(a, Data):
        return a, None, ctx.const(1, "operand"), False
    return b, None, ctx.const(0, "operand"), True  # constant on the left


def _broadcast(x: Data, c: np.ndarray) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(x.shape, c.shape))
    except ValueError:
        raise Unsupported(f"shapes {x.shape} and {c.shape} do not broadcast") from None


def scale(ctx, x: Data, mul=None, add=None, suffix=None) -> Data:
    shape = x.shape
    for c in (mul, add):
        if c is not None:
            shape = _broadcast(Data(x.id, shape), np.asarray(c))
    return ctx.add(ir.Scale, [x], shape=shape, suffix=suffix, mul=mul, add=add)


def summed(ctx, terms: list[Data], coeffs: tuple[float, ...]) -> Data:
    try:
        shape = tuple(np.broadcast_shapes(*(t.shape for t in terms)))
    except ValueError:
        raise Unsupported(f"shapes {[t.shape for t in terms]} do not broadcast") from None
    return ctx.add(ir.Sum, terms, shape=shape, coeffs=coeffs)
