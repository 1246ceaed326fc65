"""AveragePool: every pad / ceil_mode / auto_pad / count_include_pad variant, 1-D and 3-D."""

import pytest
from onnx import helper

from regionaudit.errors import RejectedModel

from .helpers import AVG_CASES, CEIL_CASES, OPSETS, POOLS_1D_AND_3D, ok


@pytest.mark.parametrize(
    "opset,attrs", [(o, a) for o in OPSETS for a in AVG_CASES + CEIL_CASES if o >= 10 or "ceil_mode" not in a]
)  # ceil_mode needs opset 10
def test_average_pool(convert, opset, attrs):
    node = helper.make_node("AveragePool", ["x"], ["y"], **attrs)
    imported = convert([node], [1, 2, 7, 8], opset=opset)
    ok(imported)
    assert imported.network.nodes[-1].kind == "avgpool"


@pytest.mark.parametrize("shape,kernel", POOLS_1D_AND_3D)
def test_average_pool_1d_and_3d(convert, shape, kernel):
    n = len(kernel)
    node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=kernel, strides=[2] * n, pads=[1] * n + [0] * n)
    ok(convert([node], shape))


@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("pads", [[2, 0, 0, 0], [0, 0, 1, 3]])
def test_average_pool_with_pads_as_large_as_the_kernel_is_refused(convert, count_include_pad, pads):
    """onnxruntime refuses a pad that reaches a whole kernel; so does the import, naming the pads."""
    node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 3], pads=pads,
                            count_include_pad=count_include_pad)
    with pytest.raises(RejectedModel, match="AveragePool.*reach a whole kernel"):
        convert([node], [1, 2, 7, 8])
