"""Cast to a float type: the data unchanged."""

from regionaudit.importer.registry import FLOAT_TYPES, Unsupported, attr, converter


@converter("Cast")
def cast(node, ctx):
    to = attr(node, "to")
    if to not in FLOAT_TYPES:
        raise Unsupported("casting data to a non-float type is not piecewise linear")
    return ctx.data(0)
