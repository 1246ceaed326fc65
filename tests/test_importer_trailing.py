"""A final Softmax, LogSoftmax or Sigmoid is stripped (the analysis is on logits); mid-graph it is refused."""

import pytest
from conftest import NEWEST_OPSET, f32
from converters.helpers import ok
from onnx import helper

from regionaudit.errors import RejectedModel


@pytest.mark.parametrize("opset", [7, 13, NEWEST_OPSET])
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Sigmoid"])
def test_final_squasher_is_stripped(convert, opset, op):
    nodes = [
        helper.make_node("Gemm", ["x", "W", "b"], ["logits"]),
        helper.make_node(op, ["logits"], ["p"], name="final"),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Identity", ["f"], ["y"]),
    ]
    imported = convert(nodes, [1, 4], {"W": f32(4, 3), "b": f32(3)}, opset)
    ok(imported)
    assert imported.notes == [f"final {op} 'final' stripped: the analysis is on logits"]
    assert imported.network.notes == imported.notes


def test_sigmoid_mid_graph_is_rejected(convert):
    nodes = [helper.make_node("Sigmoid", ["x"], ["s"], name="mid"), helper.make_node("Relu", ["s"], ["y"])]
    with pytest.raises(RejectedModel, match="not piecewise linear: Sigmoid 'mid'"):
        convert(nodes, [1, 4])
