"""Shape and Size of a tensor that depends on the input: constants, known from its fixed shape."""

import math

import numpy as np

from regionaudit.importer.registry import attr, converter


@converter("Shape")
def shape(node, ctx):
    """The shape of a data tensor is known at import (batch size 1); opset 15 added start/end."""
    dims = ctx.data(0).shape
    start, end = attr(node, "start", 0), attr(node, "end", None)
    return np.array(dims[start:end], dtype=np.int64)


@converter("Size")
def size(node, ctx):
    return np.array(math.prod(ctx.data(0).shape), dtype=np.int64)
