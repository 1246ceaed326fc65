"""GlobalAveragePool, with GlobalMaxPool."""

import pytest
from onnx import helper

from .helpers import OPSETS, ok


@pytest.mark.parametrize("opset", OPSETS)
def test_global_pools(convert, opset):
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["a"]),
        helper.make_node("GlobalMaxPool", ["x"], ["m"]),
        helper.make_node("Add", ["a", "m"], ["y"]),
    ]
    imported = convert(nodes, [1, 3, 5, 4], opset=opset)
    ok(imported)
    assert imported.network.output_shape == (1, 3, 1, 1)
