"""Mul by a constant on either side; a product of two data tensors is refused."""

import pytest

from .helpers import CONSTANT_SHAPES, OPSETS, nonlinear_is_rejected, with_a_constant


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("const_first", [False, True])
@pytest.mark.parametrize("c_shape", CONSTANT_SHAPES)
def test_mul_with_a_constant(convert, opset, const_first, c_shape):
    with_a_constant(convert, "Mul", opset, const_first, c_shape)


def test_mul_of_two_data_tensors_is_rejected(convert):
    nonlinear_is_rejected(convert, "Mul", ["x", "r"], "product of two data tensors")
