"""GlobalMaxPool: kinks, one `ir.MaxPool` window over all spatial axes."""

from regionaudit import ir
from regionaudit.importer.registry import Unsupported, converter


@converter("GlobalMaxPool", kink=True)
def global_max_pool(node, ctx):
    x = ctx.data(0)
    spatial = tuple(x.shape[2:])
    if not spatial:
        raise Unsupported(f"input {x.shape} has no spatial axes")
    n = len(spatial)
    return ctx.add(ir.MaxPool, [x], shape=(*x.shape[:2], *([1] * n)), kernel=spatial, strides=(1,) * n,
                   pads=(0,) * (2 * n), dilations=(1,) * n)
