"""Identity: the data unchanged."""

from regionaudit.importer.registry import converter


@converter("Identity")
def identity(node, ctx):
    return ctx.data(0)
