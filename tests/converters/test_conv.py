"""Conv in 1-D, 2-D and 3-D, groups, strides, dilations and pads; data weights are refused."""

import numpy as np
import pytest
from conftest import f32
from onnx import helper

from regionaudit.errors import RejectedModel

from .helpers import OPSETS, ok


CONV_CASES = [  # (x shape, weight shape, attrs)
    ([1, 3, 8, 8], (4, 3, 3, 3), {}),
    ([1, 4, 8, 8], (6, 2, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]}),
    ([1, 4, 8, 8], (4, 1, 3, 3), {"group": 4, "strides": [2, 2]}),
    ([1, 3, 9, 8], (4, 3, 3, 2), {"strides": [2, 3], "pads": [0, 1, 2, 0]}),
    ([1, 3, 9, 9], (2, 3, 3, 3), {"dilations": [2, 1], "pads": [2, 1, 2, 1]}),
    ([1, 3, 9, 8], (2, 3, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ([1, 3, 8, 9], (2, 3, 2, 4), {"auto_pad": "SAME_LOWER", "strides": [2, 1]}),
    ([1, 3, 8, 8], (2, 3, 3, 3), {"auto_pad": "VALID", "strides": [2, 2]}),
    ([1, 2, 11], (3, 2, 3), {"strides": [2], "pads": [1, 0]}),
    ([1, 2, 5, 6, 4], (3, 2, 2, 3, 2), {"pads": [1, 0, 1, 0, 1, 0]}),
]


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape,w_shape,attrs", CONV_CASES)
def test_conv(convert, opset, bias, x_shape, w_shape, attrs):
    inits = {"W": f32(*w_shape, seed=1)}
    if bias:
        inits["B"] = f32(w_shape[0], seed=2)
    node = helper.make_node("Conv", ["x", "W"] + (["B"] if bias else []), ["y"], **attrs)
    imported = convert([node], x_shape, inits, opset)
    ok(imported)
    assert imported.network.nodes[-1].kind == "conv"


def test_conv_with_data_weights_is_rejected(convert):
    nodes = [helper.make_node("Conv", ["x", "x"], ["y"])]
    with pytest.raises(RejectedModel, match="product or quotient of two data-dependent tensors: Conv 'Conv_y'"):
        convert(nodes, [1, 1, 3, 3])


def test_conv_with_a_data_bias_is_refused_as_such(convert):
    """A bias computed from the input is added, not multiplied: the refusal names the bias
    rather than a product of two data tensors."""
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[1, 2, 3], keepdims=0),
             helper.make_node("Expand", ["m", "shape"], ["b"]),
             helper.make_node("Conv", ["x", "W", "b"], ["y"])]
    with pytest.raises(RejectedModel, match="cannot convert: Conv 'Conv_y' \\(bias \\(input 2\\) must be a constant"):
        convert(nodes, [1, 2, 3, 3], {"W": f32(1, 2, 3, 3), "shape": np.array([1], np.int64)})
