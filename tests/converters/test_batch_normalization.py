"""BatchNormalization in inference form, per opset and the opset-7 spatial=0 form."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET, f32, make_model
from onnx import TensorProto, helper

from regionaudit.errors import RejectedModel
from regionaudit.importer.check import run_reference

from .helpers import ok


@pytest.mark.parametrize("opset", [7, 9, 14, NEWEST_OPSET])
@pytest.mark.parametrize("shape", [[1, 3, 4, 5], [1, 3], [1, 3, 7]])
def test_batch_normalization(convert, opset, shape):
    rng = np.random.default_rng(1)
    inits = {"s": f32(3, seed=1), "b": f32(3, seed=2), "m": f32(3, seed=3),
             "v": rng.uniform(0.5, 2, 3).astype(np.float32)}
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)
    imported = convert([node], shape, inits, opset)
    ok(imported)
    scale = imported.network.nodes[-1]
    assert scale.kind == "scale" and tuple(scale.mul.shape) == (3, *([1] * (len(shape) - 2)))


def test_batch_normalization_spatial_zero_opset_7(convert):
    rng = np.random.default_rng(1)
    inits = {"s": f32(3, 4, seed=1), "b": f32(3, 4, seed=2), "m": f32(3, 4, seed=3),
             "v": rng.uniform(0.5, 2, (3, 4)).astype(np.float32)}
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], spatial=0)
    imported = convert([node], [1, 3, 4], inits, 7)
    # onnxruntime has no spatial=0 kernel; the reference evaluator is the fallback
    assert imported.validation["max_rel_err"] < 1e-6


@pytest.mark.parametrize("opset", [9, 13, NEWEST_OPSET])
def test_float64_batch_norm_with_a_momentum_is_checked_with_its_running_statistics(convert, opset):
    """onnxruntime has no float64 Conv, so a float64 conv net is checked against onnx's reference
    evaluator, whose opset 9-13 BatchNormalization normalises by the batch's own statistics
    wherever the node has a momentum attribute (as PyTorch exports it): mended, it agrees with
    onnxruntime on the float32 model, and the import passes its check."""
    rng = np.random.default_rng(1)
    inits = {"w": f32(3, 2, 3, 3, seed=4), "s": f32(3, seed=1), "b": f32(3, seed=2), "m": f32(3, seed=3),
             "v": rng.uniform(0.5, 2, 3).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"], epsilon=1e-3, momentum=0.9)]
    feeds = [rng.standard_normal((1, 2, 5, 5)) for _ in range(2)]
    wide = make_model(nodes, [1, 2, 5, 5], {k: v.astype(np.float64) for k, v in inits.items()}, opset, elem=TensorProto.DOUBLE)
    ours, runtime = run_reference(wide, "x", "y", feeds)
    assert runtime == "onnx.reference"
    theirs, runtime = run_reference(make_model(nodes, [1, 2, 5, 5], inits, opset), "x", "y", [f.astype(np.float32) for f in feeds])
    assert runtime == "onnxruntime"
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    imported = convert(nodes, [1, 2, 5, 5], {k: v.astype(np.float64) for k, v in inits.items()}, opset,
                       model_kwargs={"elem": TensorProto.DOUBLE})
    assert imported.validation["reference"] == "onnx.reference"
    assert imported.validation["max_rel_err"] < 1e-12


@pytest.mark.parametrize("opset", [7, 9, 13, NEWEST_OPSET])
@pytest.mark.parametrize("named", [True, False])
def test_batch_normalization_with_training_outputs_is_refused(convert, opset, named):
    """Before opset 14 a node with the running statistics among its outputs is in training mode
    (torch.onnx's TrainingMode.TRAINING writes five): onnxruntime normalises by the batch's
    statistics, and crashes where the extra outputs are unnamed. From opset 14 those outputs
    need training_mode. Either way the node is refused, in one line, before any check runs."""
    rng = np.random.default_rng(1)
    inits = {"s": f32(3, seed=1), "b": f32(3, seed=2), "m": f32(3, seed=3),
             "v": rng.uniform(0.5, 2, 3).astype(np.float32)}
    extra = 4 if opset < 14 else 2
    outputs = ["y"] + ([f"stat{i}" for i in range(extra)] if named else [""] * extra)
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("BatchNormalization", ["r", "s", "b", "m", "v"], outputs, momentum=0.9)]
    with pytest.raises(RejectedModel, match="BatchNormalization .*training mode"):
        convert(nodes, [1, 3, 4, 5], inits, opset)
