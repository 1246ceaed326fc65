"""What the converter tests share: the opsets they cover, the check against onnxruntime, the
window cases of the pools and small graph builders."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET, f32
from onnx import helper

from regionaudit.errors import RejectedModel

OPSETS = [7, 11, 13, NEWEST_OPSET]
I64 = np.int64


def ok(imported, kind=None):
    """The import was checked against onnxruntime and agrees; `kind`, when given, is one of its IR nodes."""
    v = imported.validation
    assert v["reference"] == "onnxruntime"
    assert v["max_rel_err"] < 1e-6, v
    if kind is not None:
        assert kind in {n.kind for n in imported.network.nodes}


def relu_then(op_node, out="o"):
    """Relu before the op (so its input is data) and Relu after it (so the result is checked)."""
    return [helper.make_node("Relu", ["x"], ["r"]), op_node, helper.make_node("Relu", [out], ["y"])]


def then_gemm(x_out, n_in):
    """A Gemm after the op under test, so the result is mixed and a wrong order would show."""
    return helper.make_node("Gemm", [x_out, "G", "g"], ["y"]), {"G": f32(n_in, 3, seed=7), "g": f32(3, seed=8)}


def axes_by_opset(axes):
    """(opset, axis) pairs; a negative axis needs opset 11."""
    return [(o, a) for o in OPSETS for a in axes if a >= 0 or o >= 11]


AVG_CASES = [  # window attributes of AveragePool; MaxPool takes some of them
    dict(kernel_shape=[2, 2], strides=[2, 2]),
    dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1),
    dict(kernel_shape=[3, 2], strides=[1, 2], pads=[0, 1, 2, 0], count_include_pad=1),
    dict(kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 2, 0]),
    dict(kernel_shape=[3, 3], strides=[2, 3], auto_pad="SAME_UPPER"),
    dict(kernel_shape=[2, 3], strides=[2, 2], auto_pad="SAME_LOWER", count_include_pad=1),
    dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="VALID"),
    dict(kernel_shape=[7, 8], strides=[1, 1]),  # one window over the whole image
    dict(kernel_shape=[8, 9], strides=[2, 2], pads=[1, 0, 0, 1]),  # the same with pads, not counted
]
CEIL_CASES = [  # ceil_mode exists from opset 10
    dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
    dict(kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
    dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1),
    dict(kernel_shape=[3, 2], strides=[3, 3], pads=[1, 0, 1, 0], ceil_mode=1, count_include_pad=1),
    dict(kernel_shape=[2, 2], strides=[3, 3], ceil_mode=1, count_include_pad=1),
]
POOLS_1D_AND_3D = [([1, 3, 9], [3]), ([1, 2, 4, 5, 6], [2, 2, 3])]  # (input shape, kernel)


CONSTANT_SHAPES = [(), (3, 1, 1), (1, 4, 5), (2, 1, 3, 4, 5)]


def with_a_constant(convert, op, opset, const_first, c_shape):
    """A binary op (Add, Sub, Mul, Div) of the data and a constant of `c_shape`, then a Relu."""
    c = f32(*c_shape, seed=3) if c_shape else np.float32(1.7)
    inputs = ["c", "x"] if const_first else ["x", "c"]
    nodes = [helper.make_node(op, inputs, ["a"]), helper.make_node("Relu", ["a"], ["y"])]
    imported = convert(nodes, [1, 3, 4, 5], {"c": np.abs(c) + 0.5 if op == "Div" else c}, opset)
    ok(imported)


def nonlinear_is_rejected(convert, op, inputs, why):
    """`op` of `inputs` (x the input, r its Relu, c a constant, z a constant with a zero) is refused for `why`."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node(op, inputs, ["y"])]
    with pytest.raises(RejectedModel, match=why):
        convert(nodes, [1, 3], {"c": f32(3), "z": np.array([1, 0, 2], np.float32)})
