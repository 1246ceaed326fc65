"""PRelu with a constant slope of every broadcastable shape."""

import pytest
from conftest import f32
from onnx import helper

from .helpers import OPSETS, ok


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("slope_shape", [(1,), (3, 1, 1), (3, 4, 5), (5,)])
def test_prelu_constant_slope(convert, opset, slope_shape):
    node = helper.make_node("PRelu", ["x", "a"], ["y"])
    imported = convert([node], [1, 3, 4, 5], {"a": f32(*slope_shape, seed=4)}, opset)
    ok(imported)
    relu = imported.network.nodes[-1]
    assert relu.kind == "relu" and tuple(relu.slope.shape) == (1, 3, 4, 5)
    assert imported.network.neurons == 60
