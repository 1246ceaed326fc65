"""Resize in every mode and opset form, with axes, and Upsample."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET, make_model
from onnx import TensorProto, helper

from regionaudit.errors import RejectedModel
from regionaudit.importer.check import run_reference

from .helpers import I64, ok, relu_then


RESIZES = [  # (mode, extra attributes, scales or None, sizes or None)
    ("nearest", {}, [1, 1, 2, 2], None),
    ("nearest", {"nearest_mode": "floor", "coordinate_transformation_mode": "asymmetric"}, [1, 1, 2, 3], None),
    ("nearest", {}, None, [1, 2, 7, 5]),
    ("linear", {}, [1, 1, 2, 2], None),
    ("linear", {"coordinate_transformation_mode": "align_corners"}, [1, 1, 2, 1.5], None),
    ("linear", {"coordinate_transformation_mode": "pytorch_half_pixel"}, None, [1, 2, 5, 3]),
    ("linear", {}, [1, 1, 0.5, 0.5], None),
    ("cubic", {}, [1, 1, 2, 2], None),
]


@pytest.mark.parametrize("opset", [11, 13, 18, NEWEST_OPSET])
@pytest.mark.parametrize("mode,attrs,scales,sizes", RESIZES, ids=[f"{m}-{a}-{s}-{z}" for m, a, s, z in RESIZES])
def test_resize(convert, opset, mode, attrs, scales, sizes):
    inits = {"roi": np.array([], np.float32)}
    if scales is not None:
        inits["sc"] = np.array(scales, np.float32)
        inputs = ["r", "roi", "sc"]
    else:
        inits["sz"] = np.array(sizes, I64)
        inits["none"] = np.array([], np.float32)  # opsets 11 and 12 want an empty scales tensor
        inputs = ["r", "roi", "none", "sz"]
    node = helper.make_node("Resize", inputs, ["o"], mode=mode, **attrs)
    ok(convert(relu_then(node), [1, 2, 4, 6], inits, opset), "resample")


@pytest.mark.parametrize("opset", [11, 13, 17])
@pytest.mark.parametrize("nearest_mode", ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"])
@pytest.mark.parametrize("scales,sizes", [([1, 1, 2, 2], None), ([1, 1, 1.5, 0.5], None), (None, [1, 2, 7, 3])])
def test_resize_tf_half_pixel_for_nn(convert, opset, nearest_mode, scales, sizes):
    """TensorFlow's nearest resize with half-pixel centres, as tf2onnx writes it (Keras' UpSampling2D):
    a mode onnx's reference evaluator lacks, so the converter writes its map from the spec."""
    if scales is not None:
        inits, inputs = {"roi": np.array([], np.float32), "sc": np.array(scales, np.float32)}, ["r", "roi", "sc"]
    else:
        inits = {"roi": np.array([], np.float32), "none": np.array([], np.float32), "sz": np.array(sizes, I64)}
        inputs = ["r", "roi", "none", "sz"]
    node = helper.make_node("Resize", inputs, ["o"], mode="nearest", coordinate_transformation_mode="tf_half_pixel_for_nn",
                            nearest_mode=nearest_mode)
    ok(convert(relu_then(node), [1, 2, 4, 6], inits, opset), "resample")


@pytest.mark.parametrize("opset", [11, 13, NEWEST_OPSET])
@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("scales", [[1, 1, 1.5, 1], [1, 1, 1, 1.7], [1, 1, 1.3, 0.7]])
def test_resize_align_corners_with_scales_that_leave_a_fraction(convert, opset, mode, scales):
    """align_corners with scales maps the corners of the output's whole cells, floor(n x scale) of
    them (5 x 1.5 gives 7 cells, mapped by 4 / 6), as onnxruntime and torch's
    interpolate(align_corners=True, scale_factor=...) do."""
    node = helper.make_node("Resize", ["r", "roi", "sc"], ["o"], mode=mode, coordinate_transformation_mode="align_corners")
    inits = {"roi": np.array([], np.float32), "sc": np.array(scales, np.float32)}
    ok(convert(relu_then(node), [1, 2, 5, 6], inits, opset), "resample")


FLOAT32_EDGES = [  # (mode, extra attributes, input height, scale): where float32 and float64 part
    ("nearest", {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}, 10, 0.7),  # 7 cells, not 6
    ("nearest", {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}, 10, 1.3),  # 13, not 12
    ("nearest", {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}, 7, 0.6),  # 3 / 0.6f is 5
    ("nearest", {}, 6, 0.7),  # (3 + 0.5) / 0.7f - 0.5 is a tie in float32
    ("linear", {"coordinate_transformation_mode": "pytorch_half_pixel"}, 10, 0.7),
    ("cubic", {"coordinate_transformation_mode": "pytorch_half_pixel"}, 10, 1.3),
]


@pytest.mark.parametrize("opset", [11, 13, NEWEST_OPSET])
@pytest.mark.parametrize("mode,attrs,height,scale", FLOAT32_EDGES)
def test_resize_counts_and_rounds_in_float32(convert, opset, mode, attrs, height, scale):
    """onnxruntime computes a resize's cell count and nearest coordinates in float32 (as torch's
    interpolate(scale_factor=0.7) exports and counts them): floor(10 x 0.7f) is 7 cells."""
    node = helper.make_node("Resize", ["r", "roi", "sc"], ["o"], mode=mode, **attrs)
    inits = {"roi": np.array([], np.float32), "sc": np.array([1, 1, scale, 1], np.float32)}
    ok(convert(relu_then(node), [1, 2, height, 3], inits, opset), "resample")


@pytest.mark.parametrize("opset", [11, 13, NEWEST_OPSET])
def test_resize_with_both_scales_and_sizes_is_refused(convert, opset):
    """The op takes one of them (onnxruntime refuses the model); the import does not pick one."""
    inits = {"roi": np.array([], np.float32), "sc": np.array([1, 1, 2, 2], np.float32),
             "sz": np.array([1, 2, 8, 12], I64)}
    node = helper.make_node("Resize", ["r", "roi", "sc", "sz"], ["o"], mode="nearest")
    with pytest.raises(RejectedModel, match="Resize.*both scales and sizes"):
        convert(relu_then(node), [1, 2, 4, 6], inits, opset)


@pytest.mark.parametrize("opset", [18, NEWEST_OPSET])
def test_resize_with_axes(convert, opset):
    node = helper.make_node("Resize", ["r", "", "sc"], ["o"], mode="linear", axes=[3, 2])
    ok(convert(relu_then(node), [1, 2, 3, 4], {"sc": np.array([2, 3], np.float32)}, opset), "resample")


@pytest.mark.parametrize("opset,op", [(7, "Upsample"), (9, "Upsample"), (10, "Resize")])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample_and_resize_10(convert, opset, op, mode):
    if opset == 7:
        node, inits = helper.make_node("Upsample", ["r"], ["o"], mode=mode, scales=[1.0, 1.0, 2.0, 3.0]), {}
    else:
        node = helper.make_node(op, ["r", "sc"], ["o"], mode=mode)
        inits = {"sc": np.array([1, 1, 2, 3], np.float32)}
    ok(convert(relu_then(node), [1, 2, 3, 4], inits, opset), "resample")


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("scales", [[1, 1, 0.6, 0.75], [1, 1, 2, 0.4], [1, 1, 0.5, 1.5]])
def test_resize_10_shrinking(convert, mode, scales):
    """Resize-10 shrinking an axis: onnxruntime's nearest pixel is the ceiling of i / scale there
    (the floor where it grows). Before, a 0.6 resize took the floor and was refused by the check."""
    node = helper.make_node("Resize", ["r", "sc"], ["o"], mode=mode)
    ok(convert(relu_then(node), [1, 2, 10, 12], {"sc": np.array(scales, np.float32)}, 10), "resample")


MENDED_CASES = [(o, op, s) for o, op in [(7, "Upsample"), (9, "Upsample"), (10, "Resize")]
                for s in [[1, 1, 2, 3], [1, 1, 1.5, 2.5], [1, 1, 0.6, 0.75]] if op == "Resize" or min(s) >= 1]


@pytest.mark.parametrize("opset,op,scales", MENDED_CASES)
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_float64_upsample_and_resize_10_are_checked_by_the_mended_reference_evaluator(convert, opset, op, mode, scales):
    """onnxruntime has no float64 Upsample or Resize-10, and onnx's reference evaluator runs
    Upsample only at whole scales in nearest mode (not from opset 7's attribute) and reads
    Resize-10's scales as a roi: `reference_ops` runs them, compared here with onnxruntime on the
    float32 model. Before, every such float64 model was refused."""
    def node(x, y):
        if opset == 7:
            return helper.make_node(op, [x], [y], mode=mode, scales=[float(s) for s in scales])
        return helper.make_node(op, [x, "sc"], [y], mode=mode)

    nodes, inits = [node("x", "y")], ({} if opset == 7 else {"sc": np.array(scales, np.float32)})
    feeds = [np.random.default_rng(seed).standard_normal((1, 2, 5, 6)) for seed in range(2)]
    ours, runtime = run_reference(make_model(nodes, [1, 2, 5, 6], inits, opset, elem=TensorProto.DOUBLE), "x", "y", feeds)
    assert runtime == "onnx.reference"
    f32 = make_model(nodes, [1, 2, 5, 6], inits, opset)
    theirs, runtime = run_reference(f32, "x", "y", [f.astype(np.float32) for f in feeds])
    assert runtime == "onnxruntime"
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    imported = convert(relu_then(node("r", "o")), [1, 2, 5, 6], inits, opset, model_kwargs={"elem": TensorProto.DOUBLE})
    assert imported.validation["reference"] == "onnx.reference" and imported.validation["max_rel_err"] < 1e-12


@pytest.mark.parametrize("opset", [7, 9])
def test_upsample_below_one_is_refused(convert, opset):
    if opset == 7:
        node, inits = helper.make_node("Upsample", ["r"], ["o"], scales=[1.0, 1.0, 0.5, 2.0]), {}
    else:
        node, inits = helper.make_node("Upsample", ["r", "sc"], ["o"]), {"sc": np.array([1, 1, 0.5, 2], np.float32)}
    with pytest.raises(RejectedModel, match=r"Upsample's are at least 1"):
        convert(relu_then(node), [1, 2, 3, 4], inits, opset)


@pytest.mark.parametrize("opset,op,scale", [(7, "Upsample", 1.3), (9, "Upsample", 1.3), (10, "Resize", 1.3),
                                            (10, "Resize", 0.7)])  # Upsample only grows
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample_and_resize_10_count_cells_in_float32(convert, opset, op, scale, mode):
    """floor(10 x 1.3f) is 13 cells in float32, as onnxruntime counts them (12.99... in float64)."""
    if opset == 7:
        node, inits = helper.make_node("Upsample", ["r"], ["o"], mode=mode, scales=[1.0, 1.0, scale, 1.0]), {}
    else:
        node, inits = helper.make_node(op, ["r", "sc"], ["o"], mode=mode), {"sc": np.array([1, 1, scale, 1], np.float32)}
    ok(convert(relu_then(node), [1, 2, 10, 3], inits, opset), "resample")
