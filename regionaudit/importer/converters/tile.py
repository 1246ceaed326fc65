"""Tile with constant repeats: `ir.Take`."""

from regionaudit.importer.converters._take import taken
from regionaudit.importer.registry import converter


@converter("Tile")
def tile(node, ctx):
    return taken(node, ctx)
