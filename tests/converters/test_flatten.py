"""Flatten at every axis, negative ones from opset 11."""

import pytest
from onnx import helper

from .helpers import axes_by_opset, ok


@pytest.mark.parametrize("opset,axis", axes_by_opset([1, 2, -1]))
def test_flatten(convert, opset, axis):
    node = helper.make_node("Flatten", ["x"], ["y"], axis=axis)
    imported = convert([helper.make_node("Relu", ["x"], ["r"]), node], [1, 2, 3, 4], opset=opset)
    ok(imported)
