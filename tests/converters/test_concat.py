"""Concat of branches on every axis; a constant among the parts is refused."""

import pytest
from conftest import f32
from onnx import helper

from regionaudit.errors import RejectedModel

from .helpers import axes_by_opset, ok


@pytest.mark.parametrize("opset,axis", axes_by_opset([1, 3, -1]))
def test_concat_of_branches(convert, opset, axis):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Neg", ["x"], ["n"]),
        helper.make_node("Concat", ["r", "n", "x"], ["y"], axis=axis),
    ]
    imported = convert(nodes, [1, 2, 3, 4], opset=opset)
    ok(imported)
    assert imported.network.nodes[-1].kind == "concat"


def test_concat_with_a_constant_is_rejected(convert):
    node = helper.make_node("Concat", ["x", "c"], ["y"], axis=1)
    with pytest.raises(RejectedModel, match="Concat.*constants with data"):
        convert([node], [1, 2], {"c": f32(1, 2)})
