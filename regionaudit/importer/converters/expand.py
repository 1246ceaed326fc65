"""Expand to a constant shape: `ir.Take` (each output element is one input element)."""

from regionaudit.importer.converters._take import taken
from regionaudit.importer.registry import converter


@converter("Expand")
def expand(node, ctx):
    return taken(node, ctx)
