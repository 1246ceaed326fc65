"""Compress with a constant condition: `ir.Take`."""

from regionaudit.importer.converters._take import taken
from regionaudit.importer.registry import converter


@converter("Compress")
def compress(node, ctx):
    return taken(node, ctx)
