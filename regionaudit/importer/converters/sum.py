"""Sum and Mean (one converter): a weighted `ir.Sum` of the data tensors, plus the constants."""

import numpy as np

from regionaudit.importer.converters._affine import scale, summed
from regionaudit.importer.registry import Data, converter


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
        out = summed(ctx, terms, tuple(w for _ in terms))
    if consts:
        out = scale(ctx, out, add=w * sum(consts[1:], consts[0]))
    return out
