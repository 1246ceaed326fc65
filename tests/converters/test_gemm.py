"""Gemm with the data as A or B, every transpose, with and without C."""

import numpy as np
import pytest
from conftest import f32
from onnx import helper

from regionaudit.errors import RejectedModel

from .helpers import OPSETS, ok


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
    ok(convert([node], x_shape, inits, opset))


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("trans_a,trans_b", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_gemm_with_data_as_b(convert, opset, trans_a, trans_b):
    a = f32(*((4, 5) if trans_a else (5, 4)), seed=1)
    x_shape = [3, 4] if trans_b else [4, 3]
    node = helper.make_node("Gemm", ["A", "x", "C"], ["y"], transA=trans_a, transB=trans_b, alpha=0.7)
    imported = convert([node], x_shape, {"A": a, "C": f32(5, 1, seed=3)}, opset)
    ok(imported)
    assert imported.network.input_shape == tuple(x_shape)  # leading dim > 1: one whole input point


@pytest.mark.parametrize("opset", OPSETS)
def test_gemm_with_a_column_c_as_wide_as_the_output(convert, opset):
    """C of shape (M, 1) adds one value per row; with M equal to the output's width it must not be
    taken for one value per column."""
    node = helper.make_node("Gemm", ["x", "B", "C"], ["y"], alpha=0.5)
    ok(convert([node], [3, 4], {"B": f32(4, 3, seed=1), "C": f32(3, 1, seed=2)}, opset))


@pytest.mark.parametrize("data_as_a", [True, False])
@pytest.mark.parametrize("w_shape", [(4,), (1, 4, 3)])
def test_gemm_with_a_constant_that_is_not_a_matrix_is_refused(convert, data_as_a, w_shape):
    """onnxruntime refuses such a model; the Gemm is refused in one line, not broadcast."""
    inputs = ["x", "W"] if data_as_a else ["W", "x"]
    node = helper.make_node("Gemm", inputs, ["y"])
    with pytest.raises(RejectedModel, match="Gemm.*2-D operand"):
        convert([node], [1, 4] if data_as_a else [4, 1], {"W": f32(*w_shape, seed=1)})
