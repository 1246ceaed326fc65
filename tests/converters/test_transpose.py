"""Transpose with a permutation and without (reversed axes)."""

import pytest
from onnx import helper

from .helpers import OPSETS, ok, then_gemm


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("perm", [[0, 2, 3, 1], [0, 3, 1, 2], None])
def test_transpose(convert, opset, perm):
    kw = {} if perm is None else {"perm": perm}
    nodes = [helper.make_node("Transpose", ["x"], ["t"], **kw), helper.make_node("Flatten", ["t"], ["f"], axis=0)]
    gemm, inits = then_gemm("f", 24)
    ok(convert(nodes + [gemm], [1, 2, 3, 4], inits, opset))
