"""Identity, with Dropout and a float Cast: all leave the data as it is."""

import numpy as np
import pytest
from onnx import TensorProto, helper

from .helpers import OPSETS, ok


@pytest.mark.parametrize("opset", OPSETS)
def test_identity_dropout_cast(convert, opset):
    if opset < 12:
        dropout = helper.make_node("Dropout", ["i"], ["d"], ratio=0.3)
        inits = {}
    else:
        dropout = helper.make_node("Dropout", ["i", "ratio"], ["d"])
        inits = {"ratio": np.array(0.3, np.float32)}
    nodes = [
        helper.make_node("Identity", ["x"], ["i"]),
        dropout,
        helper.make_node("Cast", ["d"], ["c"], to=TensorProto.FLOAT),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    imported = convert(nodes, [1, 5], inits, opset)
    ok(imported)
    assert [n["kind"] for n in imported.nodes] == ["input", "relu"]
