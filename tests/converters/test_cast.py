"""Cast to a non-float type is refused."""

import pytest
from onnx import TensorProto, helper

from regionaudit.errors import RejectedModel


def test_cast_to_int_is_rejected(convert):
    nodes = [helper.make_node("Cast", ["x"], ["c"], to=TensorProto.INT64),
             helper.make_node("Cast", ["c"], ["y"], to=TensorProto.FLOAT)]
    with pytest.raises(RejectedModel, match="non-float type"):
        convert(nodes, [1, 5])
