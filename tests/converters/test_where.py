"""Where with a constant condition; a data condition or an infinite constant branch is refused."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET, f32
from onnx import helper

from regionaudit.errors import RejectedModel

from .helpers import ok


@pytest.mark.parametrize("opset", [9, 16, NEWEST_OPSET])
def test_where_with_constant_condition(convert, opset):
    cond = np.random.default_rng(1).random((1, 3, 4)) > 0.5
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["x"], ["n"]),
             helper.make_node("Where", ["c", "r", "n"], ["w1"]),
             helper.make_node("Where", ["c2", "w1", "k"], ["o"]), helper.make_node("Relu", ["o"], ["y"])]
    inits = {"c": cond, "c2": np.array([True, False, True, True]), "k": np.float32(-2.5) + f32(1, 1, 4, seed=9)}
    ok(convert(nodes, [1, 3, 4], inits, opset))


def test_where_with_data_condition_is_a_discontinuity(convert):
    nodes = [helper.make_node("Greater", ["x", "z"], ["g"], name="cmp"),
             helper.make_node("Where", ["g", "x", "z"], ["y"], name="sel")]
    with pytest.raises(RejectedModel, match="discontinuous: Greater 'cmp'; Where 'sel' \\(its condition is computed from the input\\)"):
        convert(nodes, [1, 3], {"z": np.zeros(3, np.float32)})


def test_where_with_an_infinite_constant_branch_is_refused(convert):
    """-inf masks would give the analyses infinite values to measure their rounding against."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Reciprocal", ["z"], ["inf"]),
             helper.make_node("Neg", ["inf"], ["k"]),  # folds to -inf
             helper.make_node("Where", ["c", "r", "k"], ["w"], name="mask"),
             helper.make_node("ReduceMax", ["w"], ["y"], axes=[1])]
    inits = {"c": np.array([True, False, True]), "z": np.zeros((1, 3), np.float32)}
    with pytest.raises(RejectedModel, match="cannot convert: Where 'mask' \\(a constant branch holds infinite"):
        convert(nodes, [1, 3], inits)
