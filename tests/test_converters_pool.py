"""Pooling converters against onnxruntime: every pad / ceil / auto_pad / count_include_pad variant."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET
from onnx import helper

from regionaudit.errors import RejectedModel

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
    _ok(imported)
    assert imported.network.nodes[-1].kind == "maxpool"
    assert imported.network.neurons == 0 and imported.network.maxpool_windows > 0


@pytest.mark.parametrize("shape,kernel", [([1, 3, 9], [3]), ([1, 2, 4, 5, 6], [2, 2, 3])])
def test_pools_1d_and_3d(convert, shape, kernel):
    n = len(kernel)
    for op in ("AveragePool", "MaxPool"):
        node = helper.make_node(op, ["x"], ["y"], kernel_shape=kernel, strides=[2] * n, pads=[1] * n + [0] * n)
        _ok(convert([node], shape))


def test_max_pool_indices_output_used_is_rejected(convert):
    nodes = [
        helper.make_node("MaxPool", ["x"], ["m", "idx"], kernel_shape=[2, 2]),
        helper.make_node("Cast", ["idx"], ["c"], to=1),
        helper.make_node("Add", ["m", "c"], ["y"]),
    ]
    with pytest.raises(RejectedModel, match="MaxPool.*output 1"):
        convert(nodes, [1, 1, 4, 4], opset=11)


@pytest.mark.parametrize("opset", OPSETS)
def test_global_pools(convert, opset):
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["a"]),
        helper.make_node("GlobalMaxPool", ["x"], ["m"]),
        helper.make_node("Add", ["a", "m"], ["y"]),
    ]
    imported = convert(nodes, [1, 3, 5, 4], opset=opset)
    _ok(imported)
    assert imported.network.output_shape == (1, 3, 1, 1)


@pytest.mark.parametrize("opset", [11, 13, 18, NEWEST_OPSET])
@pytest.mark.parametrize("op", ["ReduceMean", "ReduceSum"])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_over_trailing_axes(convert, opset, op, keepdims):
    axes_as_input = opset >= (18 if op == "ReduceMean" else 13)
    inits = {"axes": np.array([-2, -1], dtype=np.int64)} if axes_as_input else {}
    kw = {} if axes_as_input else {"axes": [2, 3]}
    node = helper.make_node(op, ["x", "axes"] if axes_as_input else ["x"], ["y"], keepdims=keepdims, **kw)
    _ok(convert([node], [1, 3, 4, 5], inits, opset=opset))


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceSum"])
@pytest.mark.parametrize("axes,keepdims", [([1], 1), ([1], 0), ([0, 2], 0), ([-3, -1], 1)])
def test_reduce_over_any_axes(convert, op, axes, keepdims):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node(op, ["r"], ["y"], axes=axes, keepdims=keepdims)]
    _ok(convert(nodes, [1, 3, 4, 5], opset=11))
