"""Split in its attribute, input and num_outputs forms."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET
from onnx import helper

from .helpers import I64, ok


@pytest.mark.parametrize("opset", [7, 11, 13, 18, NEWEST_OPSET])
def test_split_attribute_and_input_forms(convert, opset):
    if opset >= 18:
        split = helper.make_node("Split", ["r", "sp"], ["a", "b", "c"], axis=-1)
        inits = {"sp": np.array([1, 3, 2], I64)}
    elif opset >= 13:
        split = helper.make_node("Split", ["r", "sp"], ["a", "b", "c"], axis=3)
        inits = {"sp": np.array([1, 3, 2], I64)}
    else:
        split = helper.make_node("Split", ["r"], ["a", "b", "c"], axis=3, split=[1, 3, 2])
        inits = {}
    nodes = [helper.make_node("Relu", ["x"], ["r"]), split, helper.make_node("Sub", ["c", "a"], ["d"]),
             helper.make_node("Concat", ["b", "d", "a"], ["y"], axis=3)]
    ok(convert(nodes, [1, 2, 3, 6], inits, opset), "take")


@pytest.mark.parametrize("opset", [18, NEWEST_OPSET])
def test_split_num_outputs(convert, opset):
    split = helper.make_node("Split", ["r"], ["a", "b"], axis=1, num_outputs=2)
    nodes = [helper.make_node("Relu", ["x"], ["r"]), split, helper.make_node("Sub", ["a", "b"], ["y"])]
    ok(convert(nodes, [1, 4, 3], {}, opset))
