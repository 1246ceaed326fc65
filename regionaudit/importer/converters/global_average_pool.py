"""GlobalAveragePool: affine, `ir.GlobalAvgPool`."""

from regionaudit import ir
from regionaudit.importer.registry import Unsupported, converter


@converter("GlobalAveragePool")
def global_average_pool(node, ctx):
    x = ctx.data(0)
    if len(x.shape) < 3:
        raise Unsupported(f"input {x.shape} has no spatial axes")
    return ctx.add(ir.GlobalAvgPool, [x], shape=(*x.shape[:2], *([1] * (len(x.shape) - 2))),
                   n_spatial=len(x.shape) - 2)
