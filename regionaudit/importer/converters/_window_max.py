"""Max (or Min) over the last axis as one `ir.WindowMax`, analysed like a MaxPool window:
Max / Min of several tensors and ReduceMax / ReduceMin."""

import numpy as np

from regionaudit import ir
from regionaudit.importer.converters._affine import scale
from regionaudit.importer.registry import Data


def window_max(ctx, x: Data, negate: bool) -> Data:
    """Max (Min when `negate`) over the last axis of x."""
    if negate:
        x = scale(ctx, x, mul=np.array(-1.0), suffix="neg")
    y = ctx.add(ir.WindowMax, [x], shape=x.shape[:-1], kernel=(x.shape[-1],), strides=(1,), pads=(0, 0),
                dilations=(1,))
    return scale(ctx, y, mul=np.array(-1.0), suffix="unneg") if negate else y
