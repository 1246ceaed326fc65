"""Reshape and Flatten against onnxruntime."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET, f32
from onnx import helper


OPSETS = [7, 11, 13, NEWEST_OPSET]


I64 = np.int64


def _ok(imported):
    v = imported.validation
    assert v["reference"] == "onnxruntime"
    assert v["max_rel_err"] < 1e-6, v


def _then_gemm(x_out, n_in):
    """A Gemm after the op under test, so the result is mixed and a wrong order would show."""
    return helper.make_node("Gemm", [x_out, "G", "g"], ["y"]), {"G": f32(n_in, 3, seed=7), "g": f32(3, seed=8)}


def _axes_by_opset(axes):
    """(opset, axis) pairs; a negative axis needs opset 11."""
    return [(o, a) for o in OPSETS for a in axes if a >= 0 or o >= 11]


@pytest.mark.parametrize("opset,axis", _axes_by_opset([1, 2, -1]))
def test_flatten(convert, opset, axis):
    node = helper.make_node("Flatten", ["x"], ["y"], axis=axis)
    imported = convert([helper.make_node("Relu", ["x"], ["r"]), node], [1, 2, 3, 4], opset=opset)
    _ok(imported)


RESHAPES = [([0, -1], 0), ([1, 4, 6], 0), ([-1, 2, 0], 0), ([1, 24], 1), ([4, 6, 1], 1)]


@pytest.mark.parametrize(
    "opset,target,allowzero",
    [(o, t, z) for o in [7, 11, 13, 14, NEWEST_OPSET] for t, z in RESHAPES if not z or o >= 14],
)  # allowzero needs opset 14
def test_reshape(convert, opset, target, allowzero):
    kw = {"allowzero": allowzero} if opset >= 14 else {}
    reshape = helper.make_node("Reshape", ["x", "s"], ["r"], **kw)
    flat = helper.make_node("Flatten", ["r"], ["f"], axis=0)
    gemm, inits = _then_gemm("f", 24)
    imported = convert([reshape, flat, gemm], [1, 2, 3, 4], {"s": np.array(target, I64), **inits}, opset)
    _ok(imported)
