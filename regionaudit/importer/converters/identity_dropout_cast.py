"""Identity, Dropout (inference) and Casts between float types leave data values unchanged."""

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
