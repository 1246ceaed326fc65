"""Split: one `ir.Take` per used output."""

from regionaudit.importer.converters._take import index_maps, take
from regionaudit.importer.registry import converter


@converter("Split")
def split(node, ctx):
    """Opset 13 moved `split` from an attribute to an input; opset 18 added `num_outputs`."""
    x = ctx.data(0)
    maps = index_maps(node, ctx)
    first = None
    for i, (name, index) in enumerate(zip(node.output, maps)):
        if not name or (i > 0 and not ctx.used(i)):
            continue
        out = take(ctx, x, index, suffix=None if i == 0 else f"out{i}")
        if i == 0:
            first = out
        else:
            ctx.values[name] = out
    return first
