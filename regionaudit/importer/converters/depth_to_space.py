"""DepthToSpace and SpaceToDepth (one converter): `ir.Take`."""

from regionaudit.importer.converters._take import taken
from regionaudit.importer.registry import converter


@converter("DepthToSpace", "SpaceToDepth")
def depth_to_space(node, ctx):
    return taken(node, ctx)
