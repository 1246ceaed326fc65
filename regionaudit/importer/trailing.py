"""Stripping a final Softmax / LogSoftmax / Sigmoid / Tanh (GAN generators end in one): the
analysis is on the logits before it."""

from __future__ import annotations

import onnx

from regionaudit.importer.registry import FLOAT_TYPES, attr

SQUASHERS = {"Softmax", "LogSoftmax", "Sigmoid", "Tanh"}
# ops that may follow the squasher before the graph output without changing its values
PASS_THROUGH = {"Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Dropout"}


def strip_trailing(producers: dict[str, onnx.NodeProto], output: str, display) -> tuple[str, str | None]:
    """The tensor to analyse for graph output `output`, and a note when a squasher was stripped."""
    name = output
    while name in producers:
        node = producers[name]
        if node.op_type in PASS_THROUGH or (node.op_type == "Cast" and attr(node, "to") in FLOAT_TYPES):
            name = node.input[0]
        elif node.op_type in SQUASHERS:
            return node.input[0], f"final {node.op_type} '{display(node)}' stripped: the analysis is on logits"
        else:
            break
    return output, None


