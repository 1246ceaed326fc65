"""Add by a constant on either side; data + data, with Sub, Neg and Sum of data tensors."""

import pytest
from conftest import f32
from onnx import helper

from .helpers import CONSTANT_SHAPES, OPSETS, ok, with_a_constant


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
    ok(imported)
    assert [n["kind"] for n in imported.nodes].count("add") == 3


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("const_first", [False, True])
@pytest.mark.parametrize("c_shape", CONSTANT_SHAPES)
def test_add_with_a_constant(convert, opset, const_first, c_shape):
    with_a_constant(convert, "Add", opset, const_first, c_shape)
