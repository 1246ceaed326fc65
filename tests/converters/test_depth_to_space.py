"""DepthToSpace in both modes and SpaceToDepth back."""

import pytest
from conftest import NEWEST_OPSET
from onnx import helper

from .helpers import ok


@pytest.mark.parametrize("opset,mode", [(o, m) for o in [7, 11, 13, NEWEST_OPSET] for m in ["DCR", "CRD"]
                                         if m == "DCR" or o >= 11])  # CRD needs opset 11
def test_depth_to_space_and_back(convert, opset, mode):
    kw = {"mode": mode} if opset >= 11 else {}
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("DepthToSpace", ["r"], ["d"], blocksize=2, **kw),
             helper.make_node("SpaceToDepth", ["d"], ["s"], blocksize=2), helper.make_node("Sub", ["s", "r"], ["z"]),
             helper.make_node("Concat", ["d", "d"], ["c"], axis=1), helper.make_node("Flatten", ["c"], ["cf"]),
             helper.make_node("Flatten", ["z"], ["zf"]), helper.make_node("Concat", ["cf", "zf"], ["y"], axis=1)]
    ok(convert(nodes, [1, 8, 2, 3], {}, opset), "take")
