"""Reshape with 0, -1 and allowzero."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET
from onnx import helper

from .helpers import I64, ok, then_gemm


RESHAPES = [([0, -1], 0), ([1, 4, 6], 0), ([-1, 2, 0], 0), ([1, 24], 1), ([4, 6, 1], 1)]


@pytest.mark.parametrize(
    "opset,target,allowzero",
    [(o, t, z) for o in [7, 11, 13, 14, NEWEST_OPSET] for t, z in RESHAPES if not z or o >= 14],
)  # allowzero needs opset 14
def test_reshape(convert, opset, target, allowzero):
    kw = {"allowzero": allowzero} if opset >= 14 else {}
    reshape = helper.make_node("Reshape", ["x", "s"], ["r"], **kw)
    flat = helper.make_node("Flatten", ["r"], ["f"], axis=0)
    gemm, inits = then_gemm("f", 24)
    imported = convert([reshape, flat, gemm], [1, 2, 3, 4], {"s": np.array(target, I64), **inits}, opset)
    ok(imported)
