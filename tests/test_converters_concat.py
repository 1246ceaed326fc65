"""Concat against onnxruntime."""

import pytest
from conftest import NEWEST_OPSET, f32
from onnx import helper

from regionaudit.errors import RejectedModel

OPSETS = [7, 11, 13, NEWEST_OPSET]


def _ok(imported):
    v = imported.validation
    assert v["reference"] == "onnxruntime"
    assert v["max_rel_err"] < 1e-6, v


def _axes_by_opset(axes):
    """(opset, axis) pairs; a negative axis needs opset 11."""
    return [(o, a) for o in OPSETS for a in axes if a >= 0 or o >= 11]


@pytest.mark.parametrize("opset,axis", _axes_by_opset([1, 3, -1]))
def test_concat_of_branches(convert, opset, axis):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Neg", ["x"], ["n"]),
        helper.make_node("Concat", ["r", "n", "x"], ["y"], axis=axis),
    ]
    imported = convert(nodes, [1, 2, 3, 4], opset=opset)
    _ok(imported)
    assert imported.network.nodes[-1].kind == "concat"


def test_concat_with_a_constant_is_rejected(convert):
    node = helper.make_node("Concat", ["x", "c"], ["y"], axis=1)
    with pytest.raises(RejectedModel, match="Concat.*constants with data"):
        convert([node], [1, 2], {"c": f32(1, 2)})
