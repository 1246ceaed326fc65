"""ReduceMean and ReduceSum over trailing axes against onnxruntime."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET
from onnx import helper

from regionaudit.errors import RejectedModel

def _ok(imported):
    v = imported.validation
    assert v["reference"] == "onnxruntime"
    assert v["max_rel_err"] < 1e-6, v


@pytest.mark.parametrize("opset", [11, 13, 18, NEWEST_OPSET])
@pytest.mark.parametrize("op", ["ReduceMean", "ReduceSum"])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_over_trailing_axes(convert, opset, op, keepdims):
    axes_as_input = opset >= (18 if op == "ReduceMean" else 13)
    inits = {"axes": np.array([-2, -1], dtype=np.int64)} if axes_as_input else {}
    kw = {} if axes_as_input else {"axes": [2, 3]}
    node = helper.make_node(op, ["x", "axes"] if axes_as_input else ["x"], ["y"], keepdims=keepdims, **kw)
    _ok(convert([node], [1, 3, 4, 5], inits, opset=opset))


def test_reduce_over_channel_axis_is_rejected(convert):
    node = helper.make_node("ReduceMean", ["x"], ["y"], axes=[1])
    with pytest.raises(RejectedModel, match="trailing axes"):
        convert([node], [1, 3, 4, 5], opset=11)
