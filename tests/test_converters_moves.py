"""Linear ops exporters write: each on onnx.helper graphs over its opsets, checked against
onnxruntime (ConvTranspose, Split, strided Slice, Gather / GatherElements, Resize / Upsample,
reflect / edge Pad, Expand, Tile, DepthToSpace / SpaceToDepth, Einsum, Where, Mean / Sum)."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET, f32
from onnx import helper

from regionaudit import ir
from regionaudit.errors import RejectedModel

I64 = np.int64


def _ok(imported, kind=None):
    v = imported.validation
    assert v["reference"] == "onnxruntime"
    assert v["max_rel_err"] < 1e-6, v
    if kind is not None:
        assert kind in {n.kind for n in imported.network.nodes}


def _relu_then(op_node, out="o"):
    """Relu before the op (so its input is data) and Relu after it (so the result is checked)."""
    return [helper.make_node("Relu", ["x"], ["r"]), op_node, helper.make_node("Relu", [out], ["y"])]


CONVT = [  # (attrs, input spatial)
    ({}, (4, 5)),
    ({"strides": [2, 2]}, (4, 5)),
    ({"strides": [2, 3], "pads": [1, 0, 0, 2]}, (4, 5)),
    ({"strides": [2, 2], "output_padding": [1, 1], "pads": [1, 1, 1, 1]}, (4, 5)),
    ({"dilations": [2, 1]}, (4, 5)),
    ({"group": 2}, (4, 5)),
    ({"strides": [2, 2], "output_shape": [9, 11]}, (4, 5)),
    ({"strides": [2, 2], "auto_pad": "SAME_UPPER"}, (4, 5)),
    ({"strides": [2, 2], "auto_pad": "SAME_LOWER"}, (4, 5)),
]


@pytest.mark.parametrize("opset", [7, 11, NEWEST_OPSET])
@pytest.mark.parametrize("attrs,spatial", CONVT, ids=[str(a) for a, _ in CONVT])
def test_conv_transpose(convert, opset, attrs, spatial):
    groups = attrs.get("group", 1)
    w, b = f32(4, 6 // groups, 3, 3, seed=1), f32(6, seed=2)
    node = helper.make_node("ConvTranspose", ["r", "w", "b"], ["o"], **attrs)
    imported = convert(_relu_then(node), [1, 4, *spatial], {"w": w, "b": b}, opset)
    _ok(imported, "convtranspose")


@pytest.mark.parametrize("opset", [11, NEWEST_OPSET])
def test_conv_transpose_1d_without_bias(convert, opset):
    node = helper.make_node("ConvTranspose", ["r", "w"], ["o"], strides=[3])
    _ok(convert(_relu_then(node), [1, 2, 5], {"w": f32(2, 3, 4, seed=3)}, opset), "convtranspose")


@pytest.mark.parametrize("opset", [7, 11, 13, 18, NEWEST_OPSET])
def test_split_attribute_and_input_forms(convert, opset):
    if opset >= 18:
        split = helper.make_node("Split", ["r", "sp"], ["a", "b", "c"], axis=-1)
        inits = {"sp": np.array([1, 3, 2], I64)}
    elif opset >= 13:
        split = helper.make_node("Split", ["r", "sp"], ["a", "b", "c"], axis=3)
        inits = {"sp": np.array([1, 3, 2], I64)}
    else:
        split = helper.make_node("Split", ["r"], ["a", "b", "c"], axis=3, split=[1, 3, 2])
        inits = {}
    nodes = [helper.make_node("Relu", ["x"], ["r"]), split, helper.make_node("Sub", ["c", "a"], ["d"]),
             helper.make_node("Concat", ["b", "d", "a"], ["y"], axis=3)]
    _ok(convert(nodes, [1, 2, 3, 6], inits, opset), "take")


@pytest.mark.parametrize("opset", [18, NEWEST_OPSET])
def test_split_num_outputs(convert, opset):
    split = helper.make_node("Split", ["r"], ["a", "b"], axis=1, num_outputs=2)
    nodes = [helper.make_node("Relu", ["x"], ["r"]), split, helper.make_node("Sub", ["a", "b"], ["y"])]
    _ok(convert(nodes, [1, 4, 3], {}, opset))


STRIDED = [  # starts, ends, axes, steps on (1, 3, 7, 8)
    ([0], [8], [3], [2]),
    ([-1], [-1000], [2], [-1]),  # reversed
    ([6, 1], [0, 8], [2, 3], [-2, 3]),
    ([1, 0], [2**62, -1], [1, -1], [1, 2]),
]


@pytest.mark.parametrize("opset", [10, 13, NEWEST_OPSET])
@pytest.mark.parametrize("starts,ends,axes,steps", STRIDED)
def test_strided_slice(convert, opset, starts, ends, axes, steps):
    inits = {"st": np.array(starts, I64), "en": np.array(ends, I64), "ax": np.array(axes, I64),
             "sp": np.array(steps, I64)}
    node = helper.make_node("Slice", ["r", "st", "en", "ax", "sp"], ["o"])
    _ok(convert(_relu_then(node), [1, 3, 7, 8], inits, opset), "take")


GATHERS = [([2, 0, 2], 1), ([[1, 0], [3, 3]], 2), (-1, 3), ([-2, 1], -1)]


@pytest.mark.parametrize("opset,indices,axis", [(o, i, a) for o in [7, 11, 13, NEWEST_OPSET] for i, a in GATHERS
                                                if o >= 11 or (a >= 0 and np.min(i) >= 0)])  # negatives: opset 11
def test_gather_constant_indices(convert, opset, indices, axis):
    idx = np.array(indices, I64)
    node = helper.make_node("Gather", ["r", "i"], ["g"], axis=axis)
    flat = helper.make_node("Flatten", ["g"], ["o"])
    nodes = [helper.make_node("Relu", ["x"], ["r"]), node, flat, helper.make_node("Relu", ["o"], ["y"])]
    _ok(convert(nodes, [1, 3, 4, 5], {"i": idx}, opset), "take")


@pytest.mark.parametrize("opset", [11, 13, NEWEST_OPSET])
def test_gather_elements_and_nd(convert, opset):
    idx = np.random.default_rng(0).integers(-3, 3, size=(1, 3, 2)).astype(I64)
    ge = helper.make_node("GatherElements", ["r", "i"], ["g"], axis=2)
    nd = helper.make_node("GatherND", ["r", "j"], ["h"])
    nodes = [helper.make_node("Relu", ["x"], ["r"]), ge, nd, helper.make_node("Flatten", ["g"], ["gf"]),
             helper.make_node("Flatten", ["h"], ["hf"]), helper.make_node("Concat", ["gf", "hf"], ["y"], axis=1)]
    inits = {"i": idx, "j": np.array([[[0, 2], [0, 1]]], I64)}
    _ok(convert(nodes, [1, 3, 3], inits, opset))


def test_gather_on_data_indices_is_a_discontinuity(convert):
    nodes = [helper.make_node("Cast", ["x"], ["xi"], to=7), helper.make_node("Gather", ["x", "xi"], ["y"], name="g")]
    with pytest.raises(RejectedModel, match="discontinuous: Cast 'Cast_xi'.*Gather 'g'"):
        convert(nodes, [1, 3])


RESIZES = [  # (mode, extra attributes, scales or None, sizes or None)
    ("nearest", {}, [1, 1, 2, 2], None),
    ("nearest", {"nearest_mode": "floor", "coordinate_transformation_mode": "asymmetric"}, [1, 1, 2, 3], None),
    ("nearest", {}, None, [1, 2, 7, 5]),
    ("linear", {}, [1, 1, 2, 2], None),
    ("linear", {"coordinate_transformation_mode": "align_corners"}, [1, 1, 2, 1.5], None),
    ("linear", {"coordinate_transformation_mode": "pytorch_half_pixel"}, None, [1, 2, 5, 3]),
    ("linear", {}, [1, 1, 0.5, 0.5], None),
    ("cubic", {}, [1, 1, 2, 2], None),
]


@pytest.mark.parametrize("opset", [11, 13, 18, NEWEST_OPSET])
@pytest.mark.parametrize("mode,attrs,scales,sizes", RESIZES, ids=[f"{m}-{a}-{s}-{z}" for m, a, s, z in RESIZES])
def test_resize(convert, opset, mode, attrs, scales, sizes):
    inits = {"roi": np.array([], np.float32)}
    if scales is not None:
        inits["sc"] = np.array(scales, np.float32)
        inputs = ["r", "roi", "sc"]
    else:
        inits["sz"] = np.array(sizes, I64)
        inits["none"] = np.array([], np.float32)  # opsets 11 and 12 want an empty scales tensor
        inputs = ["r", "roi", "none", "sz"]
    node = helper.make_node("Resize", inputs, ["o"], mode=mode, **attrs)
    _ok(convert(_relu_then(node), [1, 2, 4, 6], inits, opset), "resample")


@pytest.mark.parametrize("opset", [18, NEWEST_OPSET])
def test_resize_with_axes(convert, opset):
    node = helper.make_node("Resize", ["r", "", "sc"], ["o"], mode="linear", axes=[3, 2])
    _ok(convert(_relu_then(node), [1, 2, 3, 4], {"sc": np.array([2, 3], np.float32)}, opset), "resample")


@pytest.mark.parametrize("opset,op", [(7, "Upsample"), (9, "Upsample"), (10, "Resize")])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample_and_resize_10(convert, opset, op, mode):
    if opset == 7:
        node, inits = helper.make_node("Upsample", ["r"], ["o"], mode=mode, scales=[1.0, 1.0, 2.0, 3.0]), {}
    else:
        node = helper.make_node(op, ["r", "sc"], ["o"], mode=mode)
        inits = {"sc": np.array([1, 1, 2, 3], np.float32)}
    _ok(convert(_relu_then(node), [1, 2, 3, 4], inits, opset), "resample")


@pytest.mark.parametrize("opset,mode", [(o, m) for o in [7, 11, 18, 19, NEWEST_OPSET]
                                         for m in ["reflect", "edge", "wrap"] if m != "wrap" or o >= 19])
def test_pad_modes(convert, opset, mode):
    pads = [0, 0, 2, 1, 0, 0, 1, 2]
    if opset < 11:
        node, inits = helper.make_node("Pad", ["r"], ["o"], mode=mode, pads=pads), {}
    else:
        node, inits = helper.make_node("Pad", ["r", "p"], ["o"], mode=mode), {"p": np.array(pads, I64)}
    _ok(convert(_relu_then(node), [1, 2, 4, 5], inits, opset), "take")


@pytest.mark.parametrize("opset", [8, 13, NEWEST_OPSET])
def test_expand_and_tile(convert, opset):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Expand", ["r", "s"], ["e"]),
             helper.make_node("Tile", ["e", "t"], ["o"]), helper.make_node("Relu", ["o"], ["y"])]
    inits = {"s": np.array([2, 1, 3, 1], I64), "t": np.array([1, 2, 1, 2], I64)}
    _ok(convert(nodes, [1, 3, 1, 2], inits, opset), "take")


@pytest.mark.parametrize("opset,mode", [(o, m) for o in [7, 11, 13, NEWEST_OPSET] for m in ["DCR", "CRD"]
                                         if m == "DCR" or o >= 11])  # CRD needs opset 11
def test_depth_to_space_and_back(convert, opset, mode):
    kw = {"mode": mode} if opset >= 11 else {}
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("DepthToSpace", ["r"], ["d"], blocksize=2, **kw),
             helper.make_node("SpaceToDepth", ["d"], ["s"], blocksize=2), helper.make_node("Sub", ["s", "r"], ["z"]),
             helper.make_node("Concat", ["d", "d"], ["c"], axis=1), helper.make_node("Flatten", ["c"], ["cf"]),
             helper.make_node("Flatten", ["z"], ["zf"]), helper.make_node("Concat", ["cf", "zf"], ["y"], axis=1)]
    _ok(convert(nodes, [1, 8, 2, 3], {}, opset), "take")


EINSUMS = [("bij,jk->bik", (1, 3, 4), (4, 5), True), ("bij,kj", (1, 3, 4), (5, 4), True),
           ("ij,...jk->...ik", None, (1, 3, 4), False), ("bchw->bhwc", (1, 2, 3, 4), None, True),
           ("bi,i->b", (1, 6), (6,), True)]


@pytest.mark.parametrize("opset", [12, NEWEST_OPSET])
@pytest.mark.parametrize("eq,xshape,wshape,data_first", EINSUMS, ids=[e[0] for e in EINSUMS])
def test_einsum_with_one_constant(convert, opset, eq, xshape, wshape, data_first):
    if data_first:
        inputs, inits, shape = (["r", "w"] if wshape else ["r"]), ({"w": f32(*wshape, seed=4)} if wshape else {}), xshape
    else:
        inputs, inits, shape = ["w", "r"], {"w": f32(3, 3, seed=5)}, wshape
    node = helper.make_node("Einsum", inputs, ["o"], equation=eq)
    _ok(convert(_relu_then(node), list(shape), inits, opset), "einsum")


def test_einsum_of_two_data_tensors_is_a_product(convert):
    node = helper.make_node("Einsum", ["x", "x"], ["y"], equation="bi,bi->b", name="dot")
    with pytest.raises(RejectedModel, match="product or quotient of two data-dependent tensors: Einsum 'dot'"):
        convert([node], [1, 4], opset=12)


@pytest.mark.parametrize("opset", [9, 16, NEWEST_OPSET])
def test_where_with_constant_condition(convert, opset):
    cond = np.random.default_rng(1).random((1, 3, 4)) > 0.5
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["x"], ["n"]),
             helper.make_node("Where", ["c", "r", "n"], ["w1"]),
             helper.make_node("Where", ["c2", "w1", "k"], ["o"]), helper.make_node("Relu", ["o"], ["y"])]
    inits = {"c": cond, "c2": np.array([True, False, True, True]), "k": np.float32(-2.5) + f32(1, 1, 4, seed=9)}
    _ok(convert(nodes, [1, 3, 4], inits, opset))


def test_where_with_data_condition_is_a_discontinuity(convert):
    nodes = [helper.make_node("Greater", ["x", "z"], ["g"], name="cmp"),
             helper.make_node("Where", ["g", "x", "z"], ["y"], name="sel")]
    with pytest.raises(RejectedModel, match="discontinuous: Greater 'cmp'; Where 'sel' \\(its condition is computed from the input\\)"):
        convert(nodes, [1, 3], {"z": np.zeros(3, np.float32)})


@pytest.mark.parametrize("opset", [7, 8, 13, NEWEST_OPSET])
@pytest.mark.parametrize("op", ["Mean", "Sum"])
def test_mean_and_sum_of_tensors(convert, opset, op):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["x"], ["n"]),
             helper.make_node(op, ["r", "n", "x", "c"], ["o"]), helper.make_node("Relu", ["o"], ["y"])]
    _ok(convert(nodes, [1, 5], {"c": f32(1, 5, seed=6)}, opset))


def test_take_is_one_index_per_output_element(convert):
    node = helper.make_node("Slice", ["r", "st", "en", "ax", "sp"], ["o"])
    inits = {"st": np.array([-1], I64), "en": np.array([-100], I64), "ax": np.array([1], I64), "sp": np.array([-2], I64)}
    imported = convert(_relu_then(node), [1, 5], inits)
    take = next(n for n in imported.network.nodes if isinstance(n, ir.Take))
    assert take.index.reshape(-1).tolist() == [4, 2, 0]


def test_knots_through_the_moves_equal_the_walk(convert):
    """Kinks between the new affine nodes: the layerwise pass and the walk agree knot for knot."""
    import torch

    from regionaudit.analysis.density import trace_segments
    from regionaudit.analysis.walk import walk_segment

    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]), helper.make_node("Relu", ["h"], ["r"], name="relu1"),
        helper.make_node("Reshape", ["r", "s"], ["r4"]),
        helper.make_node("Pad", ["r4", "p"], ["pd"], mode="reflect"),
        helper.make_node("Slice", ["pd", "st", "en", "ax", "sp"], ["sl"]),
        helper.make_node("Split", ["sl", "parts"], ["a", "b"], axis=1),
        helper.make_node("Max", ["a", "b"], ["m"], name="max"),
        helper.make_node("Resize", ["m", "", "sc"], ["up"], mode="linear"),
        helper.make_node("ConvTranspose", ["up", "wt"], ["ct"], strides=[2, 2]),
        helper.make_node("Clip", ["ct", "lo", "hi"], ["c"], name="clip"),
        helper.make_node("Einsum", ["c", "we"], ["e"], equation="bchw,hwk->bk"),
        helper.make_node("Where", ["cond", "e", "e2"], ["y"]),
    ]
    inits = {"w1": 2 * f32(3, 24, seed=1), "b1": f32(24, seed=2), "s": np.array([1, 2, 3, 4], I64),
             "p": np.array([0, 0, 1, 1, 0, 0, 1, 1], I64), "st": np.array([0, 3], I64),
             "en": np.array([5, -100], I64), "ax": np.array([2, 3], I64), "sp": np.array([2, -2], I64),
             "parts": np.array([1, 1], I64), "sc": np.array([1, 1, 1.5, 2], np.float32),
             "wt": f32(1, 2, 3, 3, seed=3), "lo": np.float32(-0.5), "hi": np.float32(1.0),
             "we": f32(9, 9, 4, seed=4), "cond": np.array([True, False, True, True]), "e2": f32(1, 4, seed=5)}
    imported = convert(nodes, [1, 3], inits, 18)
    _ok(imported)
    net = imported.network
    g = torch.Generator().manual_seed(0)
    a = 3 * torch.randn(4, 3, dtype=torch.float64, generator=g)
    b = 3 * torch.randn(4, 3, dtype=torch.float64, generator=g)
    total = dict.fromkeys(net.kink_names, 0)
    for s, d in enumerate(trace_segments(net, a, b)):
        w = walk_segment(net, a[s], b[s])
        assert d.knots_per_layer == w.knots_per_layer
        assert float((d.t - w.t).abs().max()) < 1e-9
        for k, v in d.knots_per_layer.items():
            total[k] += v
    assert all(v > 0 for v in total.values()), total


def test_einsum_macs_count_the_summed_letters(convert):
    node = helper.make_node("Einsum", ["r", "w"], ["o"], equation="bij,jk->bik")
    imported = convert(_relu_then(node), [1, 3, 4], {"w": f32(4, 5, seed=4)}, 12)
    record = next(r for r in imported.nodes if r["kind"] == "einsum")
    assert record["macs"] == 3 * 5 * 4


def test_where_with_an_infinite_constant_branch_is_refused(convert):
    """-inf masks would give the analyses infinite values to measure their rounding against."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Reciprocal", ["z"], ["inf"]),
             helper.make_node("Neg", ["inf"], ["k"]),  # folds to -inf
             helper.make_node("Where", ["c", "r", "k"], ["w"], name="mask"),
             helper.make_node("ReduceMax", ["w"], ["y"], axes=[1])]
    inits = {"c": np.array([True, False, True]), "z": np.zeros((1, 3), np.float32)}
    with pytest.raises(RejectedModel, match="cannot convert: Where 'mask' \\(a constant branch holds infinite"):
        convert(nodes, [1, 3], inits)


@pytest.mark.parametrize("opset", [11, NEWEST_OPSET])
def test_compress_and_trilu_with_constants(convert, opset):
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Compress", ["r", "keep"], ["c"], axis=2),
             helper.make_node("Flatten", ["c"], ["cf"])]
    inits = {"keep": np.array([True, False, True, True])}
    if opset >= 14:
        nodes += [helper.make_node("Trilu", ["r", "k"], ["t"], upper=0), helper.make_node("Flatten", ["t"], ["tf"]),
                  helper.make_node("Concat", ["cf", "tf"], ["y"], axis=1)]
        inits["k"] = np.array(1, I64)
    else:
        nodes += [helper.make_node("Identity", ["cf"], ["y"])]
    _ok(convert(nodes, [1, 3, 4], inits, opset))
