"""AveragePool against onnxruntime: every pad / ceil / auto_pad / count_include_pad variant."""

import pytest
from conftest import NEWEST_OPSET
from onnx import helper


OPSETS = [7, 11, 13, NEWEST_OPSET]


AVG_CASES = [
    dict(kernel_shape=[2, 2], strides=[2, 2]),
    dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1),
    dict(kernel_shape=[3, 2], strides=[1, 2], pads=[0, 1, 2, 0], count_include_pad=1),
    dict(kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 2, 0]),
    dict(kernel_shape=[3, 3], strides=[2, 3], auto_pad="SAME_UPPER"),
    dict(kernel_shape=[2, 3], strides=[2, 2], auto_pad="SAME_LOWER", count_include_pad=1),
    dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="VALID"),
]


CEIL_CASES = [  # ceil_mode exists from opset 10
    dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
    dict(kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
    dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1),
    dict(kernel_shape=[3, 2], strides=[3, 3], pads=[1, 0, 1, 0], ceil_mode=1, count_include_pad=1),
    dict(kernel_shape=[2, 2], strides=[3, 3], ceil_mode=1, count_include_pad=1),
]


def _ok(imported):
    v = imported.validation
    assert v["reference"] == "onnxruntime"
    assert v["max_rel_err"] < 1e-6, v


@pytest.mark.parametrize(
    "opset,attrs", [(o, a) for o in OPSETS for a in AVG_CASES + CEIL_CASES if o >= 10 or "ceil_mode" not in a]
)  # ceil_mode needs opset 10
def test_average_pool(convert, opset, attrs):
    node = helper.make_node("AveragePool", ["x"], ["y"], **attrs)
    imported = convert([node], [1, 2, 7, 8], opset=opset)
    _ok(imported)
    assert imported.network.nodes[-1].kind == "avgpool"
