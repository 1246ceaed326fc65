"""Squeeze and Unsqueeze against onnxruntime (axes as attribute or input)."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET
from onnx import helper


OPSETS = [7, 11, 13, NEWEST_OPSET]


I64 = np.int64


def _ok(imported):
    v = imported.validation
    assert v["reference"] == "onnxruntime"
    assert v["max_rel_err"] < 1e-6, v


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
    _ok(imported)
    assert imported.network.output_shape == (3, 4)
