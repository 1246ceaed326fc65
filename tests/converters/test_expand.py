"""Expand, followed by a Tile: both pick input elements."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET
from onnx import helper

from .helpers import I64, ok


@pytest.mark.parametrize("opset", [8, 13, NEWEST_OPSET])
def test_expand_and_tile(convert, opset):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Expand", ["r", "s"], ["e"]),
             helper.make_node("Tile", ["e", "t"], ["o"]), helper.make_node("Relu", ["o"], ["y"])]
    inits = {"s": np.array([2, 1, 3, 1], I64), "t": np.array([1, 2, 1, 2], I64)}
    ok(convert(nodes, [1, 3, 1, 2], inits, opset), "take")
