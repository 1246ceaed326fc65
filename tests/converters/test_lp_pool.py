"""LpPool and GlobalLpPool: p = 1 is a sum of |x| (an Abs, then a sum pool), checked against
onnxruntime; other p are refused as not piecewise linear."""

import numpy as np
import pytest
from conftest import make_model
from onnx import TensorProto, helper

from regionaudit.errors import RejectedModel
from regionaudit.importer.check import run_reference

from .helpers import ok

LP = [  # attributes of an LpPool with p = 1
    {"kernel_shape": [2, 2]},
    {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 1, 1]},
    {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER"},
]


@pytest.mark.parametrize("attrs", LP, ids=[str(a) for a in LP])
@pytest.mark.parametrize("opset", [11, 18])
def test_lp_pool_p1(convert, attrs, opset):
    """A 1x1 convolution, then the pool: its input takes both signs, so a missing |x| fails."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("LpPool", ["c"], ["y"], p=1, **attrs)]
    imported = convert(nodes, [1, 2, 5, 6], {"w": _w()}, opset)
    ok(imported, "avgpool")
    assert len(imported.network.kink_ids) == 1  # the Abs


def test_global_lp_pool_p1(convert):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("GlobalLpPool", ["c"], ["y"], p=1)]
    ok(convert(nodes, [1, 2, 5, 6], {"w": _w()}, 13), "avgpool")


@pytest.mark.parametrize("op", ["LpPool", "GlobalLpPool"])
def test_lp_pool_p2_is_refused(convert, op):
    extra = {"kernel_shape": [2, 2]} if op == "LpPool" else {}
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node(op, ["r"], ["y"], name="lp", **extra)]
    with pytest.raises(RejectedModel, match=rf"not piecewise linear: {op} 'lp' \(p = 2 is not piecewise linear"):
        convert(nodes, [1, 2, 5, 6], {}, 13)


def _w():
    from conftest import f32

    return f32(3, 2, 1, 1, seed=3)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_float64_global_lp_pool_is_checked_by_the_mended_reference_evaluator(convert, p):
    """onnxruntime has no float64 Conv or GlobalLpPool and onnx's reference evaluator no
    GlobalLpPool: `reference_ops` adds it, compared here with onnxruntime on the float32 model."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("GlobalLpPool", ["c"], ["y"], p=p)]
    feeds = [np.random.default_rng(seed).standard_normal((1, 2, 5, 6)) for seed in range(2)]
    wide = make_model(nodes, [1, 2, 5, 6], {"w": _w().astype(np.float64)}, 13, elem=TensorProto.DOUBLE)
    ours, runtime = run_reference(wide, "x", "y", feeds)
    assert runtime == "onnx.reference"
    theirs, runtime = run_reference(make_model(nodes, [1, 2, 5, 6], {"w": _w()}, 13), "x", "y", [f.astype(np.float32) for f in feeds])
    assert runtime == "onnxruntime"
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    if p == 1:
        imported = convert(nodes, [1, 2, 5, 6], {"w": _w().astype(np.float64)}, 13, model_kwargs={"elem": TensorProto.DOUBLE})
        assert imported.validation["reference"] == "onnx.reference" and imported.validation["max_rel_err"] < 1e-12
