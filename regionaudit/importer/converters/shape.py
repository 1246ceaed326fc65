"""Shape of a data tensor: a constant, known at import."""

import numpy as np

from regionaudit.importer.registry import attr, converter


@converter("Shape")
def shape(node, ctx):
    """The shape of a data tensor is known at import (batch size 1); opset 15 added start/end."""
    dims = ctx.data(0).shape
    start, end = attr(node, "start", 0), attr(node, "end", None)
    return np.array(dims[start:end], dtype=np.int64)
