"""Trilu: a constant mask (`ir.Scale`), the op applied to ones."""

import numpy as np

from regionaudit.importer.converters._affine import scale
from regionaudit.importer.fold import fold_node
from regionaudit.importer.registry import Data, Unsupported, converter


@converter("Trilu")
def trilu(node, ctx):
    """Keeps the upper (or lower) triangle: the op applied to ones is the mask to multiply by."""
    x = ctx.data(0)
    k = ctx.input(1)
    if isinstance(k, Data):
        raise Unsupported("its diagonal offset is computed from the input", kind="discontinuous")
    mask = fold_node(node, [np.ones(x.shape, np.float64), k], ctx.opsets)[0]
    return scale(ctx, x, mul=np.asarray(mask, np.float64))
