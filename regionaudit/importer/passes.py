"""Graph-level passes over the IR a walk of the ONNX graph built, before it becomes a `Network`.

Converters only append nodes; a rewrite that needs to see more than one node (a node and who
reads it) is a pass here, run once the whole graph is converted.
"""

from __future__ import annotations

import math
from collections import Counter

import torch

from regionaudit import ir

BIAS_OPS = ("Add", "Sub")  # ONNX ops whose constant term can be a MatMul's bias


def _readers(nodes: list[ir.Node], output: int) -> Counter:
    """How many times each node's value is read, the graph's output counted as a reader."""
    readers = Counter(i for node in nodes for i in node.inputs)
    readers[output] += 1
    return readers


def merge_biases(nodes: list[ir.Node], op_types: list[str], output: int) -> int:
    """Fold `MatMul -> Add(constant)` (or Sub) into the MatMul's bias when nothing else reads the
    product and the constant does not widen it; the Scale node is left unread (compacting drops it).

    `op_types[k]` of a merged MatMul becomes "MatMul+Add". Returns the id of the output node,
    which is the MatMul when the merged Add was the output.
    """
    readers = _readers(nodes, output)
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


def fold_flatten_transposes(nodes: list[ir.Node], op_types: list[str], output: int) -> None:
    """Fold `Transpose -> Reshape (flatten) -> MatMul` into the MatMul's weight, its rows permuted,
    where the Transpose reorders only the axes the Reshape merges and each node is read only by
    the next: the Reshape then flattens the Transpose's input. A channels-last exporter (Keras,
    tf2onnx) writes this before every dense layer after a convolution; the transposed copy is a
    pass over every knot that the permuted weight does once, at import.

    The Transpose is left unread (compacting drops it); `op_types` of the Reshape becomes
    "Transpose+Reshape".
    """
    readers = _readers(nodes, output)
    for node in nodes:
        if type(node) is not ir.MatMul or node.weight_left or node.weight.dim() != 2 or len(node.inputs) != 1:
            continue
        r = node.inputs[0]
        t = nodes[r].inputs[0] if type(nodes[r]) is ir.Reshape else None
        if t is None or type(nodes[t]) is not ir.Transpose or readers[r] != 1 or readers[t] != 1:
            continue
        moved = _merged_permutation(nodes[t], nodes[r])
        if moved is None:
            continue
        x = nodes[t].inputs[0]
        # row k of the weight multiplies element k of the flattened transpose, which is element
        # index[k] of the flattened input
        index = torch.arange(math.prod(nodes[x].shape[-len(moved):])).reshape(nodes[x].shape[-len(moved):])
        index = index.permute(*moved).reshape(-1).to(node.weight.device)
        weight = torch.empty_like(node.weight)
        weight[index] = node.weight
        node.weight = weight
        nodes[r].inputs = (x,)
        op_types[r] = op_types[t] + "+" + op_types[r]


def _merged_permutation(transpose: ir.Transpose, reshape: ir.Reshape) -> tuple[int, ...] | None:
    """The permutation of the trailing axes the Reshape merges into its last, where the Transpose
    moves only those; else None."""
    shape, out = tuple(transpose.shape), tuple(reshape.shape)
    lead = len(out) - 1
    perm = tuple(transpose.perm)
    if lead < 0 or shape[:lead] != out[:lead] or perm[:lead] != tuple(range(lead)) or len(shape) - lead < 2:
        return None
    return tuple(p - lead for p in perm[lead:])
