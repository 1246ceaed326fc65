"""Gather, GatherElements and GatherND with constant indices; data indices are a discontinuity."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET
from onnx import helper

from regionaudit.errors import RejectedModel

from .helpers import I64, ok


GATHERS = [([2, 0, 2], 1), ([[1, 0], [3, 3]], 2), (-1, 3), ([-2, 1], -1)]


@pytest.mark.parametrize("opset,indices,axis", [(o, i, a) for o in [7, 11, 13, NEWEST_OPSET] for i, a in GATHERS
                                                if o >= 11 or (a >= 0 and np.min(i) >= 0)])  # negatives: opset 11
def test_gather_constant_indices(convert, opset, indices, axis):
    idx = np.array(indices, I64)
    node = helper.make_node("Gather", ["r", "i"], ["g"], axis=axis)
    flat = helper.make_node("Flatten", ["g"], ["o"])
    nodes = [helper.make_node("Relu", ["x"], ["r"]), node, flat, helper.make_node("Relu", ["o"], ["y"])]
    ok(convert(nodes, [1, 3, 4, 5], {"i": idx}, opset), "take")


@pytest.mark.parametrize("opset", [11, 13, NEWEST_OPSET])
def test_gather_elements_and_nd(convert, opset):
    idx = np.random.default_rng(0).integers(-3, 3, size=(1, 3, 2)).astype(I64)
    ge = helper.make_node("GatherElements", ["r", "i"], ["g"], axis=2)
    nd = helper.make_node("GatherND", ["r", "j"], ["h"])
    nodes = [helper.make_node("Relu", ["x"], ["r"]), ge, nd, helper.make_node("Flatten", ["g"], ["gf"]),
             helper.make_node("Flatten", ["h"], ["hf"]), helper.make_node("Concat", ["gf", "hf"], ["y"], axis=1)]
    inits = {"i": idx, "j": np.array([[[0, 2], [0, 1]]], I64)}
    ok(convert(nodes, [1, 3, 3], inits, opset))


def test_gather_on_data_indices_is_a_discontinuity(convert):
    nodes = [helper.make_node("Cast", ["x"], ["xi"], to=7), helper.make_node("Gather", ["x", "xi"], ["y"], name="g")]
    with pytest.raises(RejectedModel, match="discontinuous: Cast 'Cast_xi'.*Gather 'g'"):
        convert(nodes, [1, 3])
