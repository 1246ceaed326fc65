"""Where with a constant condition: each element picked from one side, as masked `ir.Scale`s."""

import numpy as np

from regionaudit.importer.converters._affine import scale, summed
from regionaudit.importer.registry import Data, Unsupported, converter


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
    out = picks[0] if len(picks) == 1 else summed(ctx, picks, (1.0, 1.0))
    return scale(ctx, out, add=const) if const.any() else out
