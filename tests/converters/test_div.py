"""Div by a constant; division by data or by a constant holding zeros is refused."""

import pytest

from .helpers import CONSTANT_SHAPES, OPSETS, nonlinear_is_rejected, with_a_constant


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("const_first", [False])
@pytest.mark.parametrize("c_shape", CONSTANT_SHAPES)
def test_div_with_a_constant(convert, opset, const_first, c_shape):
    with_a_constant(convert, "Div", opset, const_first, c_shape)


# c / x is not linear
@pytest.mark.parametrize("inputs,why", [(["c", "x"], "division by a data tensor"), (["x", "z"], "holds zeros")])
def test_div_by_data_or_zeros_is_rejected(convert, inputs, why):
    nonlinear_is_rejected(convert, "Div", inputs, why)
