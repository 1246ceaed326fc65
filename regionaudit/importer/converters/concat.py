"""Concat of data tensors: `ir.Concat`."""

from regionaudit import ir
from regionaudit.importer.registry import Data, Unsupported, attr, converter


@converter("Concat")
def concat(node, ctx):
    parts = [ctx.input(i) for i in range(len(node.input))]
    if not all(isinstance(p, Data) for p in parts):
        raise Unsupported("concatenating constants with data is not supported")
    rank = len(parts[0].shape)
    axis = attr(node, "axis", 0)
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank or any(len(p.shape) != rank for p in parts):
        raise Unsupported(f"axis {attr(node, 'axis')} does not fit {[p.shape for p in parts]}")
    shape = list(parts[0].shape)
    shape[axis] = sum(p.shape[axis] for p in parts)
    if len(parts) == 1:
        return parts[0]
    return ctx.add(ir.Concat, parts, shape=tuple(shape), axis=axis)
