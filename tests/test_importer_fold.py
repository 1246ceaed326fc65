"""Constant folding at import: Constant nodes and the Shape -> Gather -> Concat -> Reshape subgraphs
exporters write are folded, leaving only the data path."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET
from converters.helpers import I64, ok
from onnx import helper


@pytest.mark.parametrize("opset", [11, 13, NEWEST_OPSET])
def test_shape_subgraph_folds_into_reshape(convert, opset):
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape, as torch's legacy exporter writes flatten."""
    unsq = (helper.make_node("Unsqueeze", ["b", "zero_axes"], ["b1"]) if opset >= 13
            else helper.make_node("Unsqueeze", ["b"], ["b1"], axes=[0]))
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Shape", ["r"], ["s"]),
        helper.make_node("Gather", ["s", "idx"], ["b"], axis=0),
        unsq,
        helper.make_node("Concat", ["b1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["r", "target"], ["f"]),
        helper.make_node("ConstantOfShape", ["target_len"], ["ones"],
                         value=helper.make_tensor("v", 1, [1], [1.0])),
        helper.make_node("Mul", ["f", "ones"], ["y"]),
    ]
    inits = {"idx": np.array(0, I64), "zero_axes": np.array([0], I64), "minus1": np.array([-1], I64),
             "target_len": np.array([24], I64)}
    imported = convert(nodes, ["N", 2, 3, 4], inits, opset)
    ok(imported)
    assert imported.network.output_shape == (1, 24)
    assert [n["kind"] for n in imported.nodes] == ["input", "relu", "reshape", "scale"]


def test_constant_nodes_fold(convert):
    nodes = [
        helper.make_node("Constant", [], ["c"], value=helper.make_tensor("c", 1, [3], [1.0, 2.0, 3.0])),
        helper.make_node("Constant", [], ["two"], value_float=2.0),
        helper.make_node("Mul", ["c", "two"], ["c2"]),
        helper.make_node("Sub", ["x", "c2"], ["y"]),
    ]
    imported = convert(nodes, [1, 3], opset=13)
    ok(imported)
    assert [n["kind"] for n in imported.nodes] == ["input", "scale"]
