"""ConvTranspose with every pads / output_padding / output_shape / auto_pad form."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET, f32, make_model
from onnx import TensorProto, helper

from regionaudit.importer.check import run_reference

from .helpers import ok, relu_then


CONVT = [  # (attrs, input spatial)
    ({}, (4, 5)),
    ({"strides": [2, 2]}, (4, 5)),
    ({"strides": [2, 3], "pads": [1, 0, 0, 2]}, (4, 5)),
    ({"strides": [2, 2], "output_padding": [1, 1], "pads": [1, 1, 1, 1]}, (4, 5)),
    ({"dilations": [2, 1]}, (4, 5)),
    ({"group": 2}, (4, 5)),
    ({"strides": [2, 2], "output_shape": [9, 11]}, (4, 5)),
    ({"strides": [2, 2], "output_shape": [8, 10]}, (4, 5)),  # an odd total pad: the extra one at the start
    ({"strides": [2, 2], "auto_pad": "SAME_UPPER"}, (4, 5)),
    ({"strides": [2, 2], "auto_pad": "SAME_LOWER"}, (4, 5)),
]


@pytest.mark.parametrize("opset", [7, 11, NEWEST_OPSET])
@pytest.mark.parametrize("attrs,spatial", CONVT, ids=[str(a) for a, _ in CONVT])
def test_conv_transpose(convert, opset, attrs, spatial):
    groups = attrs.get("group", 1)
    w, b = f32(4, 6 // groups, 3, 3, seed=1), f32(6, seed=2)
    node = helper.make_node("ConvTranspose", ["r", "w", "b"], ["o"], **attrs)
    imported = convert(relu_then(node), [1, 4, *spatial], {"w": w, "b": b}, opset)
    ok(imported, "convtranspose")


@pytest.mark.parametrize("opset", [11, NEWEST_OPSET])
def test_conv_transpose_1d_without_bias(convert, opset):
    node = helper.make_node("ConvTranspose", ["r", "w"], ["o"], strides=[3])
    ok(convert(relu_then(node), [1, 2, 5], {"w": f32(2, 3, 4, seed=3)}, opset), "convtranspose")


@pytest.mark.parametrize("attrs,spatial", CONVT, ids=[str(a) for a, _ in CONVT])
def test_float64_conv_transpose_is_checked_by_the_mended_reference_evaluator(tmp_path, convert, attrs, spatial):
    """onnxruntime has no float64 ConvTranspose, so a float64 model is checked against onnx's
    reference evaluator, whose grouped and `output_shape` cases `check._conv_transpose` mends.
    The mended evaluator is compared with onnxruntime on the float32 model, and the import
    passes its check."""
    groups = attrs.get("group", 1)
    w, b = f32(4, 6 // groups, 3, 3, seed=1).astype(np.float64), f32(6, seed=2).astype(np.float64)
    nodes = relu_then(helper.make_node("ConvTranspose", ["r", "w", "b"], ["o"], **attrs))
    feeds = [np.random.default_rng(3).standard_normal((1, 4, *spatial)) for _ in range(2)]
    wide = make_model(nodes, [1, 4, *spatial], {"w": w, "b": b}, NEWEST_OPSET, elem=TensorProto.DOUBLE)
    ours, runtime = run_reference(wide, "x", "y", feeds)
    assert runtime == "onnx.reference"
    narrow = make_model(nodes, [1, 4, *spatial], {"w": w.astype(np.float32), "b": b.astype(np.float32)}, NEWEST_OPSET)
    theirs, runtime = run_reference(narrow, "x", "y", [f.astype(np.float32) for f in feeds])
    assert runtime == "onnxruntime"
    assert ours.shape == theirs.shape and np.abs(ours).max() > 1
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    imported = convert(nodes, [1, 4, *spatial], {"w": w, "b": b}, NEWEST_OPSET, model_kwargs={"elem": TensorProto.DOUBLE})
    assert imported.validation["reference"] == "onnx.reference"
    assert imported.validation["max_rel_err"] < 1e-12
