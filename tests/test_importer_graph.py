"""The graph walker: every unsupported node named once, nodes outside the analysed output ignored."""

import pytest
from onnx import helper

from regionaudit.errors import RejectedModel

def _ok(imported):
    v = imported.validation
    assert v["reference"] == "onnxruntime"
    assert v["max_rel_err"] < 1e-6, v


def test_every_unsupported_node_is_named_once_on_one_line(convert):
    nodes = [
        helper.make_node("Tanh", ["x"], ["t"], name="node_3"),
        helper.make_node("Exp", ["t"], ["e"]),  # unnamed: gets op type + output name
        helper.make_node("Relu", ["e"], ["r"]),
        helper.make_node("HardSigmoid", ["r"], ["y"], name="hs"),
    ]
    with pytest.raises(RejectedModel) as info:
        convert(nodes, [1, 4], opset=9)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("unsupported: Tanh 'node_3' (opset 9): not piecewise linear")
    assert "Exp 'Exp_e' (opset 9): not piecewise linear" in msg
    assert "HardSigmoid 'hs' (opset 9)" in msg
    assert "supported ops: Add, AveragePool" in msg and "Relu" in msg


def test_unsupported_nodes_outside_the_analysed_output_do_not_matter(convert):
    nodes = [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Tanh", ["x"], ["aux"])]
    imported = convert(nodes, [1, 4], model_kwargs={"outputs": ("y", "aux")})
    _ok(imported)
    with pytest.raises(RejectedModel, match="Tanh"):
        convert(nodes, [1, 4], model_kwargs={"outputs": ("y", "aux")}, output_name="aux")
