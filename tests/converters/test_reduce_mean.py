"""ReduceMean and ReduceSum over trailing and any axes, keepdims or not."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET
from onnx import helper

from .helpers import ok


@pytest.mark.parametrize("opset", [11, 13, 18, NEWEST_OPSET])
@pytest.mark.parametrize("op", ["ReduceMean", "ReduceSum"])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_over_trailing_axes(convert, opset, op, keepdims):
    axes_as_input = opset >= (18 if op == "ReduceMean" else 13)
    inits = {"axes": np.array([-2, -1], dtype=np.int64)} if axes_as_input else {}
    kw = {} if axes_as_input else {"axes": [2, 3]}
    node = helper.make_node(op, ["x", "axes"] if axes_as_input else ["x"], ["y"], keepdims=keepdims, **kw)
    ok(convert([node], [1, 3, 4, 5], inits, opset=opset))


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceSum"])
@pytest.mark.parametrize("axes,keepdims", [([1], 1), ([1], 0), ([0, 2], 0), ([-3, -1], 1)])
def test_reduce_over_any_axes(convert, op, axes, keepdims):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node(op, ["r"], ["y"], axes=axes, keepdims=keepdims)]
    ok(convert(nodes, [1, 3, 4, 5], opset=11))
