"""Gather, GatherElements and GatherND (one converter) with constant indices: `ir.Take`."""

from regionaudit.importer.converters._take import taken
from regionaudit.importer.registry import converter


@converter("Gather", "GatherElements", "GatherND")
def gather(node, ctx):
    return taken(node, ctx)
