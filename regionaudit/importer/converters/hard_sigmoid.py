"""HardSigmoid: its affine part (`ir.Scale`), then `ir.Clip` to [0, 1]."""

import numpy as np

from regionaudit.importer.converters._affine import scale
from regionaudit.importer.converters._clipped import clipped
from regionaudit.importer.registry import attr, converter


@converter("HardSigmoid", kink=True)
def hard_sigmoid(node, ctx):
    """max(0, min(1, alpha z + beta)): its affine part, then a clip to [0, 1]."""
    alpha = float(attr(node, "alpha", np.float32(0.2)))
    beta = float(attr(node, "beta", np.float32(0.5)))
    inner = scale(ctx, ctx.data(0), mul=np.array(alpha), add=np.array(beta), suffix="affine")
    return clipped(ctx, inner, 0.0, 1.0, "HardSigmoid")
