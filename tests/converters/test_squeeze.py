"""Squeeze and Unsqueeze with axes as an attribute or an input, and Squeeze without axes."""

import numpy as np
import pytest
from onnx import helper

from .helpers import I64, OPSETS, ok


@pytest.mark.parametrize("opset", OPSETS)
def test_squeeze_unsqueeze_axes_attribute_or_input(convert, opset):
    as_input = opset >= 13
    inits = {"a1": np.array([1], I64), "a2": np.array([0, -1], I64)} if as_input else {}
    nodes = [
        helper.make_node("Squeeze", ["x", "a1"] if as_input else ["x"], ["s"], **({} if as_input else {"axes": [1]})),
        helper.make_node("Unsqueeze", ["s", "a2"] if as_input else ["s"], ["u"],
                         **({} if as_input else {"axes": [0, -1] if opset >= 11 else [0, 3]})),
        helper.make_node("Squeeze", ["u"], ["y"]),  # no axes: every size-1 axis
    ]
    imported = convert(nodes, [1, 1, 3, 4], inits, opset)
    ok(imported)
    assert imported.network.output_shape == (3, 4)
