"""Ops that leave data values unchanged (Identity, Dropout, float Casts) or read only its shape."""

import math

import numpy as np

from regionaudit.importer.registry import FLOAT_TYPES, Unsupported, attr, converter


@converter("Identity")
def identity(node, ctx):
    return ctx.data(0)


@converter("Dropout")
def dropout(node, ctx):
    """Inference form only: opset 12 moved `training_mode` from nowhere to an optional input."""
    training = ctx.const(2, "training_mode", float64=False)
    if training is not None and bool(np.asarray(training).item()):
        raise Unsupported("training_mode is on (random masks are not a fixed function)")
    return ctx.data(0)


@converter("Cast")
def cast(node, ctx):
    to = attr(node, "to")
    if to not in FLOAT_TYPES:
        raise Unsupported("casting data to a non-float type is not piecewise linear")
    return ctx.data(0)


@converter("Shape")
def shape(node, ctx):
    """The shape of a data tensor is known at import (batch size 1); opset 15 added start/end."""
    dims = ctx.data(0).shape
    start, end = attr(node, "start", 0), attr(node, "end", None)
    return np.array(dims[start:end], dtype=np.int64)


@converter("Size")
def size(node, ctx):
    return np.array(math.prod(ctx.data(0).shape), dtype=np.int64)
