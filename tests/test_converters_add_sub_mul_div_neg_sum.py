"""Add, Sub, Mul, Div, Neg and Sum against onnxruntime."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET, f32
from onnx import helper

from regionaudit.errors import RejectedModel

OPSETS = [7, 11, 13, NEWEST_OPSET]


def _ok(imported):
    v = imported.validation
    assert v["reference"] == "onnxruntime"
    assert v["max_rel_err"] < 1e-6, v


LINEAR_SIDES = [(op, first) for op in ["Add", "Sub", "Mul", "Div"] for first in [False, True] if not (op == "Div" and first)]


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("op,const_first", LINEAR_SIDES)
@pytest.mark.parametrize("c_shape", [(), (3, 1, 1), (1, 4, 5), (2, 1, 3, 4, 5)])
def test_binary_ops_with_a_constant(convert, opset, op, const_first, c_shape):
    c = f32(*c_shape, seed=3) if c_shape else np.float32(1.7)
    inputs = ["c", "x"] if const_first else ["x", "c"]
    nodes = [helper.make_node(op, inputs, ["a"]), helper.make_node("Relu", ["a"], ["y"])]
    imported = convert(nodes, [1, 3, 4, 5], {"c": np.abs(c) + 0.5 if op == "Div" else c}, opset)
    _ok(imported)


@pytest.mark.parametrize("opset", OPSETS)
def test_data_plus_minus_data_and_neg(convert, opset):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Neg", ["x"], ["n"]),
        helper.make_node("Sub", ["r", "n"], ["s"]),
        helper.make_node("Add", ["s", "r"], ["a"]),
        helper.make_node("Sum", ["a", "x", "c"], ["y"]),
    ]
    imported = convert(nodes, [1, 6], {"c": f32(1, 6)}, opset)
    _ok(imported)
    assert [n["kind"] for n in imported.nodes].count("add") == 3


@pytest.mark.parametrize("op,inputs,why", [
    ("Mul", ["x", "r"], "product of two data tensors"),
    ("Div", ["c", "x"], "division by a data tensor"),
    ("Div", ["x", "z"], "holds zeros"),
])
def test_nonlinear_binary_ops_are_rejected(convert, op, inputs, why):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node(op, inputs, ["y"])]
    with pytest.raises(RejectedModel, match=why):
        convert(nodes, [1, 3], {"c": f32(3), "z": np.array([1, 0, 2], np.float32)})
