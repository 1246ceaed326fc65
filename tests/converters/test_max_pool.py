"""MaxPool: every pad / ceil_mode / auto_pad / dilation variant, 1-D and 3-D; a used Indices output is refused."""

import pytest
from onnx import helper

from regionaudit.errors import RejectedModel

from .helpers import AVG_CASES, CEIL_CASES, OPSETS, POOLS_1D_AND_3D, ok


MAX_CASES = AVG_CASES[:2] + [AVG_CASES[4], AVG_CASES[5], AVG_CASES[7]] + [
    dict(kernel_shape=[2, 2], strides=[2, 2], pads=[1, 0, 0, 1]),
]


MAX_NEW_CASES = [c for c in CEIL_CASES if "count_include_pad" not in c] + [  # opset >= 10
    dict(kernel_shape=[2, 2], strides=[1, 1], dilations=[2, 2]),
    dict(kernel_shape=[2, 3], strides=[2, 1], dilations=[2, 1], pads=[1, 1, 0, 1], ceil_mode=1),
]


@pytest.mark.parametrize(
    "opset,attrs", [(o, a) for o in OPSETS for a in MAX_CASES + MAX_NEW_CASES if o >= 10 or a not in MAX_NEW_CASES]
)  # ceil_mode and dilations need opset 10
def test_max_pool(convert, opset, attrs):
    node = helper.make_node("MaxPool", ["x"], ["y"], **attrs)
    imported = convert([node], [1, 2, 7, 8], opset=opset)
    ok(imported)
    assert imported.network.nodes[-1].kind == "maxpool"
    assert imported.network.neurons == 0 and imported.network.maxpool_windows > 0


def test_max_pool_indices_output_used_is_rejected(convert):
    nodes = [
        helper.make_node("MaxPool", ["x"], ["m", "idx"], kernel_shape=[2, 2]),
        helper.make_node("Cast", ["idx"], ["c"], to=1),
        helper.make_node("Add", ["m", "c"], ["y"]),
    ]
    with pytest.raises(RejectedModel, match="MaxPool.*output 1"):
        convert(nodes, [1, 1, 4, 4], opset=11)


@pytest.mark.parametrize("pads", [[2, 0, 0, 0], [0, 0, 1, 3]])
def test_max_pool_with_pads_as_large_as_the_kernel_is_refused(convert, pads):
    """onnxruntime refuses a pad that reaches a whole kernel; so does the import, naming the pads."""
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 3], pads=pads)
    with pytest.raises(RejectedModel, match="MaxPool.*reach a whole kernel"):
        convert([node], [1, 2, 7, 8])


@pytest.mark.parametrize("shape,kernel", POOLS_1D_AND_3D)
def test_max_pool_1d_and_3d(convert, shape, kernel):
    n = len(kernel)
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=kernel, strides=[2] * n, pads=[1] * n + [0] * n)
    ok(convert([node], shape))
