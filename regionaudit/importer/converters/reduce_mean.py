"""ReduceMean and ReduceSum (one converter): affine, a `GlobalAvgPool` over the reduced axes.

torch's dynamo exporter writes AdaptiveAvgPool(1) and `x.mean((2, 3))` this way. Opset 13
(ReduceSum) and 18 (ReduceMean) moved `axes` from an attribute to an input.
"""

from regionaudit.importer.converters._reduced import reduced
from regionaudit.importer.registry import converter


@converter("ReduceMean", "ReduceSum")
def reduce_mean(node, ctx):
    return reduced(node, ctx, ctx.data(0), mean=node.op_type == "ReduceMean")
