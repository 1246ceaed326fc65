"""Compress with a constant condition, and Trilu with a constant offset."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET
from onnx import helper

from .helpers import I64, ok


@pytest.mark.parametrize("opset", [11, NEWEST_OPSET])
def test_compress_and_trilu_with_constants(convert, opset):
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Compress", ["r", "keep"], ["c"], axis=2),
             helper.make_node("Flatten", ["c"], ["cf"])]
    inits = {"keep": np.array([True, False, True, True])}
    if opset >= 14:
        nodes += [helper.make_node("Trilu", ["r", "k"], ["t"], upper=0), helper.make_node("Flatten", ["t"], ["tf"]),
                  helper.make_node("Concat", ["cf", "tf"], ["y"], axis=1)]
        inits["k"] = np.array(1, I64)
    else:
        nodes += [helper.make_node("Identity", ["cf"], ["y"])]
    ok(convert(nodes, [1, 3, 4], inits, opset))
