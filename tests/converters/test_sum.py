"""Sum and Mean of tensors, data and constants."""

import pytest
from conftest import NEWEST_OPSET, f32
from onnx import helper

from .helpers import ok


@pytest.mark.parametrize("opset", [7, 8, 13, NEWEST_OPSET])
@pytest.mark.parametrize("op", ["Mean", "Sum"])
def test_mean_and_sum_of_tensors(convert, opset, op):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["x"], ["n"]),
             helper.make_node(op, ["r", "n", "x", "c"], ["o"]), helper.make_node("Relu", ["o"], ["y"])]
    ok(convert(nodes, [1, 5], {"c": f32(1, 5, seed=6)}, opset))
