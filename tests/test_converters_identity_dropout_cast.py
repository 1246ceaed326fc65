"""Identity, Dropout and Cast against onnxruntime."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET
from onnx import TensorProto, helper

from regionaudit.errors import RejectedModel

OPSETS = [7, 11, 13, NEWEST_OPSET]


def _ok(imported):
    v = imported.validation
    assert v["reference"] == "onnxruntime"
    assert v["max_rel_err"] < 1e-6, v


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
    _ok(imported)
    assert [n["kind"] for n in imported.nodes] == ["input", "relu"]


def test_cast_to_int_is_rejected(convert):
    nodes = [helper.make_node("Cast", ["x"], ["c"], to=TensorProto.INT64),
             helper.make_node("Cast", ["c"], ["y"], to=TensorProto.FLOAT)]
    with pytest.raises(RejectedModel, match="non-float type"):
        convert(nodes, [1, 5])
