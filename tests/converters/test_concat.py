"""Concat of branches on every axis; constants among the parts, before, between and after the
data, on every axis but the batch axis (refused there)."""

import numpy as np
import pytest
from conftest import f32
from onnx import helper

from regionaudit.errors import RejectedModel

from .helpers import axes_by_opset, ok, then_gemm


@pytest.mark.parametrize("opset,axis", axes_by_opset([1, 3, -1]))
def test_concat_of_branches(convert, opset, axis):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Neg", ["x"], ["n"]),
        helper.make_node("Concat", ["r", "n", "x"], ["y"], axis=axis),
    ]
    imported = convert(nodes, [1, 2, 3, 4], opset=opset)
    ok(imported)
    assert imported.network.nodes[-1].kind == "concat"


@pytest.mark.parametrize("axis", [1, 2, -1])
@pytest.mark.parametrize("order", [("c", "r"), ("r", "c"), ("c", "r", "z", "c2", "n", "c")], ids=["before", "after", "between"])
def test_concat_with_constants_pads_the_data_and_adds_them(convert, axis, order):
    """The constants' values land where ONNX puts them (checked against onnxruntime through a
    Relu and a Gemm that mix every entry); an all-zero constant adds nothing."""
    shape = [1, 2, 3, 4]
    size = {"c": 2, "c2": 1, "z": 3}  # entries along the axis
    inits = {}
    for name, k in size.items():
        s = list(shape)
        s[axis] = k
        inits[name] = f32(*s, seed=k) if name != "z" else np.zeros(s, np.float32)
    total = sum(size[p] if p in size else shape[axis] for p in order)
    out = list(shape)
    out[axis] = total
    gemm, weights = then_gemm("f", int(np.prod(out)))
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["x"], ["n"]),
             helper.make_node("Concat", list(order), ["cat"], axis=axis), helper.make_node("Relu", ["cat"], ["o"]),
             helper.make_node("Flatten", ["o"], ["f"]), gemm]
    imported = convert(nodes, shape, {**inits, **weights})
    ok(imported, "pad")
    relu_after = [n for n in imported.network.nodes if n.kind == "relu"][-1]
    assert tuple(relu_after.shape) == tuple(out)


def test_concat_with_a_constant_along_the_batch_axis_is_rejected(convert):
    node = helper.make_node("Concat", ["x", "c"], ["y"], axis=0)
    with pytest.raises(RejectedModel, match="Concat.*constants with data along the batch axis"):
        convert([node], [1, 2], {"c": f32(1, 2)})


def test_concat_with_a_constant_of_integers_is_rejected(convert):
    """A constant part is read as the op reads it, in the data's float type: integers are refused."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Concat", ["r", "k"], ["y"], axis=1)]
    with pytest.raises(RejectedModel, match="Concat.*holds int64 values"):
        convert(nodes, [1, 2], {"k": np.array([[1, 2]], np.int64)})
