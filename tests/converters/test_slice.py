"""Slice: step-1 crops in the attribute and input forms, strided and reversed slices, empty ones refused."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET
from onnx import helper

from regionaudit import ir
from regionaudit.errors import RejectedModel

from .helpers import I64, OPSETS, ok, relu_then


SLICES = [  # starts, ends, axes (None: leading axes), on input (1, 2, 5, 6)
    ([0, 1], [1, 4], [1, 2]),
    ([-3], [2**62], [-1]),  # negative start, "to the end" as torch writes it
    ([1, -100], [2, 100], [2, 3]),  # out-of-range bounds are clamped
    ([0, 0, 2], [1, 2, 4], None),
]


def _slice_node(opset, starts, ends, axes):
    if opset < 10:
        kw = {"starts": starts, "ends": ends} | ({"axes": axes} if axes is not None else {})
        return helper.make_node("Slice", ["x"], ["s"], **kw), {}
    inits = {"st": np.array(starts, I64), "en": np.array(ends, I64)}
    if axes is not None:
        inits["ax"] = np.array(axes, I64)
    return helper.make_node("Slice", ["x", "st", "en"] + (["ax"] if axes is not None else []), ["s"]), inits


@pytest.mark.parametrize(
    "opset,case", [(o, c) for o in OPSETS for c in SLICES if o >= 10 or all(v >= 0 for v in c[2] or [])]
)  # a negative axis needs opset 10
def test_slice_is_a_crop(convert, opset, case):
    node, inits = _slice_node(opset, *case)
    imported = convert([node, helper.make_node("Relu", ["s"], ["y"])], [1, 2, 5, 6], inits, opset)
    ok(imported)
    assert imported.network.nodes[1].kind == "pad"


def test_empty_slice_is_refused(convert):
    inits = {"st": np.array([4], I64), "en": np.array([2], I64), "ax": np.array([3], I64)}
    node = helper.make_node("Slice", ["x", "st", "en", "ax"], ["s"])
    with pytest.raises(RejectedModel, match="Slice.*empty"):
        convert([node, helper.make_node("Relu", ["s"], ["y"])], [1, 2, 5, 6], inits)


MALFORMED = [  # starts, ends, axes, steps on (1, 2, 5, 6): onnxruntime refuses each
    ([0, 1], [3], [2], [1]),  # more starts than ends
    ([0], [3], [2, 3], [1]),  # more axes than starts
    ([0, 1], [3, 4], [3, -1], [1, 1]),  # axis 3 twice
    ([0, 1], [3, 4], [2, 2], [1, 2]),  # axis 2 twice, strided
]


def _slice(starts, ends, axes, steps):
    """A Slice of the ReLU's output `r` with constant starts, ends, axes and steps."""
    inits = {"st": np.array(starts, I64), "en": np.array(ends, I64), "ax": np.array(axes, I64),
             "sp": np.array(steps, I64)}
    return helper.make_node("Slice", ["r", "st", "en", "ax", "sp"], ["o"]), inits


@pytest.mark.parametrize("opset", [10, 13, NEWEST_OPSET])
@pytest.mark.parametrize("starts,ends,axes,steps", MALFORMED)
def test_slice_with_lists_that_do_not_match_is_refused(convert, opset, starts, ends, axes, steps):
    node, inits = _slice(starts, ends, axes, steps)
    with pytest.raises(RejectedModel, match="Slice.*(differ in length|twice)"):
        convert(relu_then(node), [1, 2, 5, 6], inits, opset)


STRIDED = [  # starts, ends, axes, steps on (1, 3, 7, 8)
    ([0], [8], [3], [2]),
    ([-1], [-1000], [2], [-1]),  # reversed
    ([6, 1], [0, 8], [2, 3], [-2, 3]),
    ([1, 0], [2**62, -1], [1, -1], [1, 2]),
]


@pytest.mark.parametrize("opset", [10, 13, NEWEST_OPSET])
@pytest.mark.parametrize("starts,ends,axes,steps", STRIDED)
def test_strided_slice(convert, opset, starts, ends, axes, steps):
    node, inits = _slice(starts, ends, axes, steps)
    ok(convert(relu_then(node), [1, 3, 7, 8], inits, opset), "take")


def test_take_is_one_index_per_output_element(convert):
    node = helper.make_node("Slice", ["r", "st", "en", "ax", "sp"], ["o"])
    inits = {"st": np.array([-1], I64), "en": np.array([-100], I64), "ax": np.array([1], I64), "sp": np.array([-2], I64)}
    imported = convert(relu_then(node), [1, 5], inits)
    take = next(n for n in imported.network.nodes if isinstance(n, ir.Take))
    assert take.index.reshape(-1).tolist() == [4, 2, 0]
