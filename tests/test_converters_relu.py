"""Relu, LeakyRelu and PRelu against onnxruntime."""

import pytest
from conftest import NEWEST_OPSET, f32
from onnx import helper


OPSETS = [7, 11, 13, NEWEST_OPSET]


def _ok(imported):
    v = imported.validation
    assert v["reference"] == "onnxruntime"
    assert v["max_rel_err"] < 1e-6, v


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("slope_shape", [(1,), (3, 1, 1), (3, 4, 5), (5,)])
def test_prelu_constant_slope(convert, opset, slope_shape):
    node = helper.make_node("PRelu", ["x", "a"], ["y"])
    imported = convert([node], [1, 3, 4, 5], {"a": f32(*slope_shape, seed=4)}, opset)
    _ok(imported)
    relu = imported.network.nodes[-1]
    assert relu.kind == "relu" and tuple(relu.slope.shape) == (1, 3, 4, 5)
    assert imported.network.neurons == 60


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("alpha", [None, 0.2, -0.5])
def test_leaky_relu(convert, opset, alpha):
    kw = {} if alpha is None else {"alpha": alpha}
    imported = convert([helper.make_node("LeakyRelu", ["x"], ["y"], **kw)], [1, 7], opset=opset)
    _ok(imported)
    assert float(imported.network.nodes[-1].slope) == pytest.approx(0.01 if alpha is None else alpha)
