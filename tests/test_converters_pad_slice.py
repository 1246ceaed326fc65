"""Pad (zero) and Slice (step 1) against onnxruntime."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET
from onnx import helper

from regionaudit.errors import RejectedModel

OPSETS = [7, 11, 13, NEWEST_OPSET]


I64 = np.int64


def _ok(imported):
    v = imported.validation
    assert v["reference"] == "onnxruntime"
    assert v["max_rel_err"] < 1e-6, v


def _pad_node(opset, pads, value=0.0, mode="constant", axes=None):
    if opset < 11:
        return helper.make_node("Pad", ["x"], ["p"], pads=pads, value=value, mode=mode), {}
    inits = {"pads": np.array(pads, I64), "v": np.array(value, np.float32)}
    inputs = ["x", "pads", "v"]
    if axes is not None:
        inits["axes"] = np.array(axes, I64)
        inputs.append("axes")
    return helper.make_node("Pad", inputs, ["p"], mode=mode), inits


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("pads", [[0, 0, 1, 2, 0, 0, 2, 1], [0, 1, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0, 0, 0]])
def test_pad_zero(convert, opset, pads):
    pad, inits = _pad_node(opset, pads)
    imported = convert([pad, helper.make_node("Relu", ["p"], ["y"])], [1, 2, 3, 4], inits, opset)
    _ok(imported)


def test_pad_with_axes_input(convert):
    pad, inits = _pad_node(NEWEST_OPSET, [1, 2, 0, 1], axes=[-1, 1])
    _ok(convert([pad, helper.make_node("Relu", ["p"], ["y"])], [1, 2, 3, 4], inits, NEWEST_OPSET))


@pytest.mark.parametrize("opset", [7, 13])
@pytest.mark.parametrize("value,mode,why", [(1.0, "constant", "padding value"), (0.0, "reflect", "mode 'reflect'")])
def test_pad_nonzero_or_other_modes_are_rejected(convert, opset, value, mode, why):
    pad, inits = _pad_node(opset, [0, 0, 1, 1, 0, 0, 1, 1], value=value, mode=mode)
    with pytest.raises(RejectedModel, match=why):
        convert([pad, helper.make_node("Relu", ["p"], ["y"])], [1, 2, 3, 4], inits, opset)


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
    _ok(imported)
    assert imported.network.nodes[1].kind == "pad"


def test_slice_with_a_step_or_empty_is_refused(convert):
    inits = {"st": np.array([0], I64), "en": np.array([6], I64), "ax": np.array([3], I64), "sp": np.array([2], I64)}
    node = helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["s"])
    with pytest.raises(RejectedModel, match="Slice.*step 2"):
        convert([node, helper.make_node("Relu", ["s"], ["y"])], [1, 2, 5, 6], inits)
    inits = {"st": np.array([4], I64), "en": np.array([2], I64), "ax": np.array([3], I64)}
    node = helper.make_node("Slice", ["x", "st", "en", "ax"], ["s"])
    with pytest.raises(RejectedModel, match="Slice.*empty"):
        convert([node, helper.make_node("Relu", ["s"], ["y"])], [1, 2, 5, 6], inits)
