"""MatMul with a constant on either side; a product of two data tensors is refused."""

import pytest
from conftest import f32
from onnx import helper

from regionaudit.errors import RejectedModel

from .helpers import OPSETS, ok


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
    # a constant with more axes than the data broadcasts it (numpy's rule)
    ([1, 4], (3, 4, 2), False),
    ([3, 4], (2, 4, 5), False),
    ([4], (2, 3, 4, 2), False),
    ([1, 2, 4], (3, 1, 4, 2), False),
    ([4, 3], (5, 2, 4), True),
    ([4], (5, 2, 4), True),
]


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("x_shape,w_shape,left", MATMUL_CASES)
def test_matmul_constant_on_either_side(convert, opset, x_shape, w_shape, left):
    inputs = ["W", "x"] if left else ["x", "W"]
    node = helper.make_node("MatMul", inputs, ["y"])
    ok(convert([node], x_shape, {"W": f32(*w_shape, seed=1)}, opset))


def test_matmul_of_two_data_tensors_is_rejected(convert):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("MatMul", ["x", "r"], ["y"])]
    with pytest.raises(RejectedModel, match="product of two data tensors"):
        convert(nodes, [4, 4])
