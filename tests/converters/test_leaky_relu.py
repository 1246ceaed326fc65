"""LeakyRelu with the default and given slopes."""

import pytest
from onnx import helper

from .helpers import OPSETS, ok


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("alpha", [None, 0.2, -0.5])
def test_leaky_relu(convert, opset, alpha):
    kw = {} if alpha is None else {"alpha": alpha}
    imported = convert([helper.make_node("LeakyRelu", ["x"], ["y"], **kw)], [1, 7], opset=opset)
    ok(imported)
    assert float(imported.network.nodes[-1].slope) == pytest.approx(0.01 if alpha is None else alpha)
