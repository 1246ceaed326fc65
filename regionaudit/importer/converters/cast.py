"""Cast to a float type: the data unchanged."""

import onnx

from regionaudit.importer.registry import FLOAT_TYPES, Unsupported, attr, converter


@converter("Cast")
def cast(node, ctx):
    """A cast to float16 or bfloat16 rounds the data, a step function: the analysis takes the
    values as exact, says so in a note, and the import check allows that type's error."""
    to = attr(node, "to")
    if to not in FLOAT_TYPES:
        raise Unsupported("casting data to a non-float type is not piecewise linear")
    if to in (onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16):
        name = onnx.TensorProto.DataType.Name(to).lower()
        ctx.notes.append(f"Cast '{ctx.node_name}' rounds the data to {name}: the analysis takes its values as exact "
                         f"(the rounding is a step function, not piecewise linear); the import check allows {name}'s error")
        ctx.rounded_to.append(to)
    return ctx.data(0)
