"""Pad: constant padding (zero or not) in every opset form, reflect / edge / wrap modes; a padding
value that is not finite is refused."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET
from onnx import helper

from regionaudit.errors import RejectedModel

from .helpers import I64, OPSETS, ok, relu_then


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
    ok(imported)


def test_pad_with_axes_input(convert):
    pad, inits = _pad_node(NEWEST_OPSET, [1, 2, 0, 1], axes=[-1, 1])
    ok(convert([pad, helper.make_node("Relu", ["p"], ["y"])], [1, 2, 3, 4], inits, NEWEST_OPSET))


@pytest.mark.parametrize("pads,axes", [([1, 2, 0, 1], [2, -2]), ([1, 2, 0, 1], [1, 4]), ([1, 2, 0], [1, 2]),
                                       ([1, 2], [1, 2])])
def test_pad_with_axes_that_do_not_fit_is_refused(convert, pads, axes):
    """An axis named twice or out of range, or pads that are not two per axis: onnxruntime
    refuses the model, and so does the import, naming the axes."""
    pad, inits = _pad_node(NEWEST_OPSET, pads, axes=axes)
    with pytest.raises(RejectedModel, match=r"Pad.*axes \["):
        convert([pad, helper.make_node("Relu", ["p"], ["y"])], [1, 2, 3, 4], inits, NEWEST_OPSET)


@pytest.mark.parametrize("opset", [7, 13, NEWEST_OPSET])
@pytest.mark.parametrize("pads,value", [([0, 0, 1, 2, 0, 0, 2, 1], 1.0), ([0, 0, -1, 2, 0, 0, 1, -2], -0.75),
                                        ([0, 1, 0, 1, 0, 0, 1, 0], -2.5), ([0, 0, -1, 0, 0, 0, 0, -1], 3.0)])
def test_pad_nonzero_constant(convert, opset, pads, value):
    """The constant on the border only (the inside, cropped where a pad is negative, is the
    input's), checked against onnxruntime through an Abs, which keeps a negative border's value
    (a Relu would turn it into the zero padding it must differ from)."""
    pad, inits = _pad_node(opset, pads, value=value)
    imported = convert([pad, helper.make_node("Abs", ["p"], ["y"])], [1, 2, 3, 4], inits, opset)
    ok(imported)
    assert ("scale" in {n.kind for n in imported.network.nodes}) == any(p > 0 for p in pads)


@pytest.mark.parametrize("opset", [7, 13])
def test_pad_infinite_constant_is_rejected(convert, opset):
    pad, inits = _pad_node(opset, [0, 0, 1, 1, 0, 0, 1, 1], value=float("inf"))
    # (an initializer is refused before: "holds NaN or infinite values")
    with pytest.raises(RejectedModel, match="padding value inf is not finite|'v' holds NaN or infinite values"):
        convert([pad, helper.make_node("Relu", ["p"], ["y"])], [1, 2, 3, 4], inits, opset)


@pytest.mark.parametrize("opset,mode", [(o, m) for o in [7, 11, 18, 19, NEWEST_OPSET]
                                         for m in ["reflect", "edge", "wrap"] if m != "wrap" or o >= 19])
@pytest.mark.parametrize("pads", [[0, 0, 2, 1, 0, 0, 1, 2], [0, 0, 2, -1, 0, 0, -1, 2]], ids=["grow", "crop"])
def test_pad_modes(convert, opset, mode, pads):
    """Negative pads crop after the padding, as onnxruntime does (before, such a Pad was refused
    with the reference evaluator's own message)."""
    if opset < 11:
        node, inits = helper.make_node("Pad", ["r"], ["o"], mode=mode, pads=pads), {}
    else:
        node, inits = helper.make_node("Pad", ["r", "p"], ["o"], mode=mode), {"p": np.array(pads, I64)}
    ok(convert(relu_then(node), [1, 2, 4, 5], inits, opset), "take")


def test_reflect_past_the_input_is_refused(convert):
    """onnxruntime refuses a reflection longer than the (cropped) axis less one; numpy's, which
    the reference evaluator uses, would reflect again."""
    node = helper.make_node("Pad", ["r", "p"], ["o"], mode="reflect")
    with pytest.raises(RejectedModel, match=r"reflect pads \[0, 0, 3, 0, 0, 0, 0, 0\] reach past the input \(1, 2, 3, 5\)"):
        convert(relu_then(node), [1, 2, 4, 5], {"p": np.array([0, 0, 3, 0, 0, 0, -1, 0], I64)}, 13)
