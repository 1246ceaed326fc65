"""BatchNormalization in inference form, per opset and the opset-7 spatial=0 form."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET, f32
from onnx import helper

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
