"""Transpose: `ir.Transpose` (none for the identity permutation)."""

from regionaudit import ir
from regionaudit.importer.registry import Unsupported, attr, converter


@converter("Transpose")
def transpose(node, ctx):
    x = ctx.data(0)
    rank = len(x.shape)
    perm = tuple(attr(node, "perm", list(reversed(range(rank)))))
    if sorted(perm) != list(range(rank)):
        raise Unsupported(f"perm {perm} does not fit {x.shape}")
    if perm == tuple(range(rank)):
        return x
    return ctx.add(ir.Transpose, [x], shape=tuple(x.shape[p] for p in perm), perm=perm)
