"""Dropout in inference form: the data unchanged."""

import numpy as np

from regionaudit.importer.registry import Unsupported, converter


@converter("Dropout")
def dropout(node, ctx):
    """Inference form only: opset 12 moved `training_mode` from nowhere to an optional input."""
    training = ctx.const(2, "training_mode", float64=False)
    if training is not None and bool(np.asarray(training).item()):
        raise Unsupported("training_mode is on (random masks are not a fixed function)")
    return ctx.data(0)
