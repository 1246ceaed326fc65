"""Add/Sub/Mul/Div/Neg/Sum: by constants they become `ir.Scale`; data +/- data becomes `ir.Sum`."""

import numpy as np

from regionaudit import ir
from regionaudit.importer.registry import PRODUCT, Data, Unsupported, converter


def _operands(ctx):
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


def _sum(ctx, terms: list[Data], coeffs: tuple[float, ...]) -> Data:
    try:
        shape = tuple(np.broadcast_shapes(*(t.shape for t in terms)))
    except ValueError:
        raise Unsupported(f"shapes {[t.shape for t in terms]} do not broadcast") from None
    return ctx.add(ir.Sum, terms, shape=shape, coeffs=coeffs)


@converter("Add")
def add(node, ctx):
    x, y, c, _ = _operands(ctx)
    if y is not None:
        return _sum(ctx, [x, y], (1.0, 1.0))
    return scale(ctx, x, add=c)  # after a MatMul, passes.merge_biases makes it the MatMul's bias


@converter("Sub")
def sub(node, ctx):
    x, y, c, left = _operands(ctx)
    if y is not None:
        return _sum(ctx, [x, y], (1.0, -1.0))
    if left:  # c - x
        return scale(ctx, x, mul=np.array(-1.0), add=c)
    return scale(ctx, x, add=-c)


@converter("Mul")
def mul(node, ctx):
    x, y, c, _ = _operands(ctx)
    if y is not None:
        raise Unsupported("product of two data tensors is not piecewise linear", kind=PRODUCT)
    return scale(ctx, x, mul=c)


@converter("Div")
def div(node, ctx):
    x, y, c, left = _operands(ctx)
    if y is not None or left:
        raise Unsupported("division by a data tensor is not piecewise linear", kind=PRODUCT)
    if (c == 0).any():
        raise Unsupported("division by a constant that holds zeros")
    return scale(ctx, x, mul=1.0 / c)


@converter("Neg")
def neg(node, ctx):
    return scale(ctx, ctx.data(0), mul=np.array(-1.0))


@converter("Sum", "Mean")
def sum_(node, ctx):
    """Sum or Mean of several tensors: a weighted `ir.Sum` of the data, plus the constants."""
    values = [ctx.input(i) for i in range(len(node.input))]
    w = 1.0 / len(values) if node.op_type == "Mean" else 1.0
    terms = [v for v in values if isinstance(v, Data)]
    consts = [v.astype(np.float64) for v in values if not isinstance(v, Data)]
    if len(terms) == 1:
        out = terms[0] if w == 1.0 else scale(ctx, terms[0], mul=np.array(w))
    else:
        out = _sum(ctx, terms, tuple(w for _ in terms))
    if consts:
        out = scale(ctx, out, add=w * sum(consts[1:], consts[0]))
    return out


@converter("Where")
def where(node, ctx):
    """With a constant condition, Where picks each element from one side: `x * c + y * (1 - c)`
    with c in {0, 1}, exact. A condition computed from the input is a discontinuity."""
    cond = ctx.input(0)
    if isinstance(cond, Data):
        raise Unsupported("its condition is computed from the input", kind="discontinuous")
    c = np.asarray(cond).astype(bool)
    x, y = ctx.input(1), ctx.input(2)
    for v in (x, y):  # an infinite mask value would make every later rounding floor infinite
        if not isinstance(v, Data) and not np.isfinite(np.asarray(v, np.float64)).all():
            raise Unsupported("a constant branch holds infinite or NaN values")
    try:
        shape = tuple(np.broadcast_shapes(c.shape, *(v.shape for v in (x, y))))
    except ValueError:
        raise Unsupported("shapes do not broadcast") from None
    picks = []
    for v, mask in ((x, c), (y, ~c)):
        if isinstance(v, Data):
            picks.append(scale(ctx, v, mul=np.broadcast_to(mask, shape).astype(np.float64)))
    const = np.zeros(shape)
    for v, mask in ((x, c), (y, ~c)):
        if not isinstance(v, Data):
            const = const + np.where(mask, np.asarray(v, np.float64), 0.0)
    out = picks[0] if len(picks) == 1 else _sum(ctx, picks, (1.0, 1.0))
    return scale(ctx, out, add=const) if const.any() else out
