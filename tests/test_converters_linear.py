"""Gemm, MatMul and Conv converters against onnxruntime, across opsets."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET, f32
from onnx import helper

from regionaudit.errors import RejectedModel

OPSETS = [7, 11, 13, NEWEST_OPSET]


def _ok(imported, tol=1e-6):
    v = imported.validation
    assert v["reference"] == "onnxruntime"
    assert v["max_rel_err"] < tol, v


GEMM_DATA_A = [  # (x shape, attrs, B shape, C shape or None)
    ([1, 4], {}, (4, 3), (3,)),
    ([1, 4], {"transB": 1}, (3, 4), (1, 3)),
    ([1, 4], {"alpha": 0.5, "beta": 2.0}, (4, 3), (1, 3)),
    ([4, 1], {"transA": 1}, (4, 3), (3,)),
    ([2, 4], {"transB": 1, "alpha": -1.5}, (3, 4), (2, 3)),
    ([1, 4], {}, (4, 3), ()),
    ([1, 4], {}, (4, 3), None),
]


# C is optional from opset 11
GEMM_DATA_A_BY_OPSET = [(o, *case) for o in OPSETS for case in GEMM_DATA_A if case[3] is not None or o >= 11]


@pytest.mark.parametrize("opset,x_shape,attrs,b_shape,c_shape", GEMM_DATA_A_BY_OPSET)
def test_gemm_with_data_as_a(convert, opset, x_shape, attrs, b_shape, c_shape):
    inits = {"B": f32(*b_shape, seed=1)}
    if c_shape is not None:
        inits["C"] = f32(*c_shape, seed=2) if c_shape else np.float32(0.7)
    node = helper.make_node("Gemm", ["x", "B"] + (["C"] if c_shape is not None else []), ["y"], **attrs)
    _ok(convert([node], x_shape, inits, opset))


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("trans_a,trans_b", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_gemm_with_data_as_b(convert, opset, trans_a, trans_b):
    a = f32(*((4, 5) if trans_a else (5, 4)), seed=1)
    x_shape = [3, 4] if trans_b else [4, 3]
    node = helper.make_node("Gemm", ["A", "x", "C"], ["y"], transA=trans_a, transB=trans_b, alpha=0.7)
    imported = convert([node], x_shape, {"A": a, "C": f32(5, 1, seed=3)}, opset)
    _ok(imported)
    assert imported.network.input_shape == tuple(x_shape)  # leading dim > 1: one whole input point


MATMUL_CASES = [  # (x shape, weight shape, weight on the left)
    ([1, 4], (4, 3), False),
    ([4, 3], (5, 4), True),
    ([1, 2, 4], (4, 3), False),
    ([1, 2, 4], (3, 2), True),
    ([6], (6, 3), False),
    ([6], (3, 6), True),
    ([6], (6,), False),
    ([1, 6], (6,), False),
    ([4, 3], (4,), True),
    ([2, 3, 4], (2, 4, 5), False),
]


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("x_shape,w_shape,left", MATMUL_CASES)
def test_matmul_constant_on_either_side(convert, opset, x_shape, w_shape, left):
    inputs = ["W", "x"] if left else ["x", "W"]
    node = helper.make_node("MatMul", inputs, ["y"])
    _ok(convert([node], x_shape, {"W": f32(*w_shape, seed=1)}, opset))


def test_matmul_add_bias_is_merged(convert):
    nodes = [helper.make_node("MatMul", ["x", "W"], ["m"]), helper.make_node("Add", ["b", "m"], ["y"])]
    imported = convert(nodes, [1, 4], {"W": f32(4, 3), "b": f32(3, seed=1)})
    _ok(imported)
    assert [n["op_type"] for n in imported.nodes] == ["Input", "MatMul+Add"]
    assert imported.nodes[1]["params"] == 15


def test_matmul_add_bias_not_merged_when_product_is_read_twice(convert):
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["a"]),
        helper.make_node("Relu", ["m"], ["r"]),
        helper.make_node("Add", ["a", "r"], ["y"]),
    ]
    imported = convert(nodes, [1, 4], {"W": f32(4, 3), "b": f32(3, seed=1)})
    _ok(imported)
    assert "MatMul" in [n["op_type"] for n in imported.nodes]


def test_matmul_of_two_data_tensors_is_rejected(convert):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("MatMul", ["x", "r"], ["y"])]
    with pytest.raises(RejectedModel, match="product of two data tensors"):
        convert(nodes, [4, 4])


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
    _ok(imported)
    assert imported.network.nodes[-1].kind == "conv"


def test_conv_with_data_weights_is_rejected(convert):
    nodes = [helper.make_node("Conv", ["x", "x"], ["y"])]
    with pytest.raises(RejectedModel, match="product or quotient of two data-dependent tensors: Conv 'Conv_y'"):
        convert(nodes, [1, 1, 3, 3])
