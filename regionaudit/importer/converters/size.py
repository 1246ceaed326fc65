"""Size of a data tensor: a constant, known at import."""

import math

import numpy as np

from regionaudit.importer.registry import converter


@converter("Size")
def size(node, ctx):
    return np.array(math.prod(ctx.data(0).shape), dtype=np.int64)
