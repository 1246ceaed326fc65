"""Sub of a constant on either side."""

import pytest

from .helpers import CONSTANT_SHAPES, OPSETS, with_a_constant


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("const_first", [False, True])
@pytest.mark.parametrize("c_shape", CONSTANT_SHAPES)
def test_sub_with_a_constant(convert, opset, const_first, c_shape):
    with_a_constant(convert, "Sub", opset, const_first, c_shape)
