"""ConvTranspose with every pads / output_padding / output_shape / auto_pad form."""

import pytest
from conftest import NEWEST_OPSET, f32
from onnx import helper

from .helpers import ok, relu_then


CONVT = [  # (attrs, input spatial)
    ({}, (4, 5)),
    ({"strides": [2, 2]}, (4, 5)),
    ({"strides": [2, 3], "pads": [1, 0, 0, 2]}, (4, 5)),
    ({"strides": [2, 2], "output_padding": [1, 1], "pads": [1, 1, 1, 1]}, (4, 5)),
    ({"dilations": [2, 1]}, (4, 5)),
    ({"group": 2}, (4, 5)),
    ({"strides": [2, 2], "output_shape": [9, 11]}, (4, 5)),
    ({"strides": [2, 2], "output_shape": [8, 10]}, (4, 5)),  # an odd total pad: the extra one at the start
    ({"strides": [2, 2], "auto_pad": "SAME_UPPER"}, (4, 5)),
    ({"strides": [2, 2], "auto_pad": "SAME_LOWER"}, (4, 5)),
]


@pytest.mark.parametrize("opset", [7, 11, NEWEST_OPSET])
@pytest.mark.parametrize("attrs,spatial", CONVT, ids=[str(a) for a, _ in CONVT])
def test_conv_transpose(convert, opset, attrs, spatial):
    groups = attrs.get("group", 1)
    w, b = f32(4, 6 // groups, 3, 3, seed=1), f32(6, seed=2)
    node = helper.make_node("ConvTranspose", ["r", "w", "b"], ["o"], **attrs)
    imported = convert(relu_then(node), [1, 4, *spatial], {"w": w, "b": b}, opset)
    ok(imported, "convtranspose")


@pytest.mark.parametrize("opset", [11, NEWEST_OPSET])
def test_conv_transpose_1d_without_bias(convert, opset):
    node = helper.make_node("ConvTranspose", ["r", "w"], ["o"], strides=[3])
    ok(convert(relu_then(node), [1, 2, 5], {"w": f32(2, 3, 4, seed=3)}, opset), "convtranspose")
