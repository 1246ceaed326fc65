"""Graph-level passes over the IR a walk of the ONNX graph built, before it becomes a `Network`.

Converters only append nodes; a rewrite that needs to see more than one node (a node and who
reads it) is a pass here, run once the whole graph is converted.
"""

from __future__ import annotations

from collections import Counter

from regionaudit import ir

BIAS_OPS = ("Add", "Sub")  # ONNX ops whose constant term can be a MatMul's bias


def merge_biases(nodes: list[ir.Node], op_types: list[str], output: int) -> int:
    """Fold `MatMul -> Add(constant)` (or Sub) into the MatMul's bias when nothing else reads the
    product and the constant does not widen it; the Scale node is left unread (compacting drops it).

    `op_types[k]` of a merged MatMul becomes "MatMul+Add". Returns the id of the output node,
    which is the MatMul when the merged Add was the output.
    """
    readers = Counter(i for node in nodes for i in node.inputs)
    readers[output] += 1
    for k, node in enumerate(nodes):
        if type(node) is not ir.Scale or op_types[k] not in BIAS_OPS or node.mul is not None or node.add is None:
            continue
        (src,) = node.inputs
        product = nodes[src]
        if type(product) is not ir.MatMul or product.bias is not None or readers[src] != 1:
            continue
        if tuple(node.shape) != tuple(product.shape):
            continue  # the constant broadcasts the product to a larger shape: not a bias
        product.bias = node.add
        op_types[src] = op_types[src] + "+Add"
        for later in nodes[k + 1 :]:
            later.inputs = tuple(src if i == k else i for i in later.inputs)
        readers[src] = readers.pop(k, 0)
        if output == k:
            output = src
    return output
