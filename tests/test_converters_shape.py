"""Reshape/Flatten/Squeeze/Unsqueeze/Transpose/Concat/Pad and constant folding of shape subgraphs."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET, f32
from onnx import helper

from regionaudit.errors import RejectedModel

OPSETS = [7, 11, 13, NEWEST_OPSET]
I64 = np.int64


def _ok(imported):
    v = imported.validation
    assert v["reference"] == "onnxruntime"
    assert v["max_rel_err"] < 1e-6, v


def _then_gemm(x_out, n_in):
    """A Gemm after the op under test, so the result is mixed and a wrong order would show."""
    return helper.make_node("Gemm", [x_out, "G", "g"], ["y"]), {"G": f32(n_in, 3, seed=7), "g": f32(3, seed=8)}


def _axes_by_opset(axes):
    """(opset, axis) pairs; a negative axis needs opset 11."""
    return [(o, a) for o in OPSETS for a in axes if a >= 0 or o >= 11]


@pytest.mark.parametrize("opset,axis", _axes_by_opset([1, 2, -1]))
def test_flatten(convert, opset, axis):
    node = helper.make_node("Flatten", ["x"], ["y"], axis=axis)
    imported = convert([helper.make_node("Relu", ["x"], ["r"]), node], [1, 2, 3, 4], opset=opset)
    _ok(imported)


RESHAPES = [([0, -1], 0), ([1, 4, 6], 0), ([-1, 2, 0], 0), ([1, 24], 1), ([4, 6, 1], 1)]


@pytest.mark.parametrize(
    "opset,target,allowzero",
    [(o, t, z) for o in [7, 11, 13, 14, NEWEST_OPSET] for t, z in RESHAPES if not z or o >= 14],
)  # allowzero needs opset 14
def test_reshape(convert, opset, target, allowzero):
    kw = {"allowzero": allowzero} if opset >= 14 else {}
    reshape = helper.make_node("Reshape", ["x", "s"], ["r"], **kw)
    flat = helper.make_node("Flatten", ["r"], ["f"], axis=0)
    gemm, inits = _then_gemm("f", 24)
    imported = convert([reshape, flat, gemm], [1, 2, 3, 4], {"s": np.array(target, I64), **inits}, opset)
    _ok(imported)


@pytest.mark.parametrize("opset", OPSETS)
def test_squeeze_unsqueeze_axes_attribute_or_input(convert, opset):
    as_input = opset >= 13
    inits = {"a1": np.array([1], I64), "a2": np.array([0, -1], I64)} if as_input else {}
    nodes = [
        helper.make_node("Squeeze", ["x", "a1"] if as_input else ["x"], ["s"], **({} if as_input else {"axes": [1]})),
        helper.make_node("Unsqueeze", ["s", "a2"] if as_input else ["s"], ["u"],
                         **({} if as_input else {"axes": [0, -1] if opset >= 11 else [0, 3]})),
        helper.make_node("Squeeze", ["u"], ["y"]),  # no axes: every size-1 axis
    ]
    imported = convert(nodes, [1, 1, 3, 4], inits, opset)
    _ok(imported)
    assert imported.network.output_shape == (3, 4)


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("perm", [[0, 2, 3, 1], [0, 3, 1, 2], None])
def test_transpose(convert, opset, perm):
    kw = {} if perm is None else {"perm": perm}
    nodes = [helper.make_node("Transpose", ["x"], ["t"], **kw), helper.make_node("Flatten", ["t"], ["f"], axis=0)]
    gemm, inits = _then_gemm("f", 24)
    _ok(convert(nodes + [gemm], [1, 2, 3, 4], inits, opset))


@pytest.mark.parametrize("opset,axis", _axes_by_opset([1, 3, -1]))
def test_concat_of_branches(convert, opset, axis):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Neg", ["x"], ["n"]),
        helper.make_node("Concat", ["r", "n", "x"], ["y"], axis=axis),
    ]
    imported = convert(nodes, [1, 2, 3, 4], opset=opset)
    _ok(imported)
    assert imported.network.nodes[-1].kind == "concat"


def test_concat_with_a_constant_is_rejected(convert):
    node = helper.make_node("Concat", ["x", "c"], ["y"], axis=1)
    with pytest.raises(RejectedModel, match="Concat.*constants with data"):
        convert([node], [1, 2], {"c": f32(1, 2)})


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
def test_pad_nonzero_constant_is_rejected(convert, opset):
    pad, inits = _pad_node(opset, [0, 0, 1, 1, 0, 0, 1, 1], value=1.0)
    with pytest.raises(RejectedModel, match="padding value"):
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


def test_empty_slice_is_refused(convert):
    inits = {"st": np.array([4], I64), "en": np.array([2], I64), "ax": np.array([3], I64)}
    node = helper.make_node("Slice", ["x", "st", "en", "ax"], ["s"])
    with pytest.raises(RejectedModel, match="Slice.*empty"):
        convert([node, helper.make_node("Relu", ["s"], ["y"])], [1, 2, 5, 6], inits)


@pytest.mark.parametrize("opset", [11, 13, NEWEST_OPSET])
def test_shape_subgraph_folds_into_reshape(convert, opset):
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape, as torch's legacy exporter writes flatten."""
    unsq = (helper.make_node("Unsqueeze", ["b", "zero_axes"], ["b1"]) if opset >= 13
            else helper.make_node("Unsqueeze", ["b"], ["b1"], axes=[0]))
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Shape", ["r"], ["s"]),
        helper.make_node("Gather", ["s", "idx"], ["b"], axis=0),
        unsq,
        helper.make_node("Concat", ["b1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["r", "target"], ["f"]),
        helper.make_node("ConstantOfShape", ["target_len"], ["ones"],
                         value=helper.make_tensor("v", 1, [1], [1.0])),
        helper.make_node("Mul", ["f", "ones"], ["y"]),
    ]
    inits = {"idx": np.array(0, I64), "zero_axes": np.array([0], I64), "minus1": np.array([-1], I64),
             "target_len": np.array([24], I64)}
    imported = convert(nodes, ["N", 2, 3, 4], inits, opset)
    _ok(imported)
    assert imported.network.output_shape == (1, 24)
    assert [n["kind"] for n in imported.nodes] == ["input", "relu", "reshape", "scale"]


def test_constant_nodes_fold(convert):
    nodes = [
        helper.make_node("Constant", [], ["c"], value=helper.make_tensor("c", 1, [3], [1.0, 2.0, 3.0])),
        helper.make_node("Constant", [], ["two"], value_float=2.0),
        helper.make_node("Mul", ["c", "two"], ["c2"]),
        helper.make_node("Sub", ["x", "c2"], ["y"]),
    ]
    imported = convert(nodes, [1, 3], opset=13)
    _ok(imported)
    assert [n["kind"] for n in imported.nodes] == ["input", "scale"]
