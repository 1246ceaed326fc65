"""Transpose against onnxruntime."""

import pytest
from conftest import NEWEST_OPSET, f32
from onnx import helper


OPSETS = [7, 11, 13, NEWEST_OPSET]


def _ok(imported):
    v = imported.validation
    assert v["reference"] == "onnxruntime"
    assert v["max_rel_err"] < 1e-6, v


def _then_gemm(x_out, n_in):
    """A Gemm after the op under test, so the result is mixed and a wrong order would show."""
    return helper.make_node("Gemm", [x_out, "G", "g"], ["y"]), {"G": f32(n_in, 3, seed=7), "g": f32(3, seed=8)}


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("perm", [[0, 2, 3, 1], [0, 3, 1, 2], None])
def test_transpose(convert, opset, perm):
    kw = {} if perm is None else {"perm": perm}
    nodes = [helper.make_node("Transpose", ["x"], ["t"], **kw), helper.make_node("Flatten", ["t"], ["f"], axis=0)]
    gemm, inits = _then_gemm("f", 24)
    _ok(convert(nodes + [gemm], [1, 2, 3, 4], inits, opset))
