"""The elementwise and window kinks exporters write (Clip / ReLU6 / Hardtanh, HardSigmoid, Abs,
Max / Min of tensors, Max(x, 0), ReduceMax / ReduceMin): imported from onnx.helper graphs, checked
against onnxruntime, then knots equal the reference walk's and distances an autograd formula; kinks
between the affine moves (Reshape, Pad, Slice, Split, Resize, ConvTranspose, Einsum, Where) too."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import f32
from converters.helpers import ok
import plainpath
from onnx import helper

from regionaudit import ir
from regionaudit.analysis import crossings
from regionaudit.analysis.crossings import kink_crossings, unit_crossings
from regionaudit.analysis.density import midpoint_check, trace_segments
from regionaudit.analysis.distance import boundary_distances
from regionaudit.analysis.walk import walk_segment
from regionaudit.ir import units
from test_analysis_density import assert_same_trace

I64 = np.int64


def _gemm(name, x, n_in, n_out, seed, gain=2.0):
    inits = {f"{name}_w": gain * f32(n_in, n_out, seed=seed), f"{name}_b": f32(n_out, seed=seed + 100)}
    return helper.make_node("Gemm", [x, f"{name}_w", f"{name}_b"], [name], name=name), inits


def _chain(*pieces):
    nodes, inits = [], {}
    for node, init in pieces:
        nodes.append(node)
        inits.update(init)
    return nodes, inits


def clip_mlp(opset):
    """Gemm -> ReLU6-style Clip -> Gemm -> Hardtanh (Clip -1, 1) -> Gemm."""
    if opset >= 11:
        c1 = helper.make_node("Clip", ["h1", "zero", "six"], ["a1"], name="relu6")
        c2 = helper.make_node("Clip", ["h2", "m1", "one"], ["a2"], name="hardtanh")
        bounds = {"zero": np.array(0, np.float32), "six": np.array(6, np.float32),
                  "m1": np.array(-1, np.float32), "one": np.array(1, np.float32)}
    else:
        c1 = helper.make_node("Clip", ["h1"], ["a1"], name="relu6", min=0.0, max=6.0)
        c2 = helper.make_node("Clip", ["h2"], ["a2"], name="hardtanh", min=-1.0, max=1.0)
        bounds = {}
    nodes, inits = _chain(_gemm("h1", "x", 3, 12, 1, gain=4.0), (c1, {}), _gemm("h2", "a1", 12, 10, 2, gain=0.6),
                          (c2, {}), _gemm("y", "a2", 10, 3, 3))
    return nodes, {**inits, **bounds}, [1, 3]


def hard_sigmoid_abs_mlp(opset):
    nodes, inits = _chain(
        _gemm("h1", "x", 3, 10, 4),
        (helper.make_node("HardSigmoid", ["h1"], ["a1"], name="hsig", alpha=0.5, beta=0.2), {}),
        _gemm("h2", "a1", 10, 8, 5),
        (helper.make_node("Abs", ["h2"], ["a2"], name="abs"), {}),
        _gemm("y", "a2", 8, 2, 6),
    )
    return nodes, inits, [1, 3]


def max_min_mlp(opset):
    """Max of two branches, Min of three (one a constant), a ReLU written as Max(x, 0) and a Min
    with a constant (a clip from above)."""
    nodes, inits = _chain(
        _gemm("p", "x", 3, 8, 7), _gemm("q", "x", 3, 8, 8), _gemm("r", "x", 3, 8, 9),
        (helper.make_node("Max", ["p", "q"], ["m"], name="max2"), {}),
        (helper.make_node("Min", ["m", "r", "c"], ["n"], name="min3"), {"c": np.float32(0.5) + f32(8, seed=10)}),
        _gemm("h", "n", 8, 6, 11),
        (helper.make_node("Max", ["h", "zero"], ["a"], name="relu_as_max"), {"zero": np.zeros(1, np.float32)}),
        (helper.make_node("Min", ["a", "cap"], ["ac"], name="capped"), {"cap": np.array([1.5], np.float32)}),
        _gemm("y", "ac", 6, 2, 12),
    )
    return nodes, inits, [1, 3]


def reduce_max_net(opset):
    """Gemm to (1, 4, 6), ReduceMax over the middle axis and ReduceMin over the last, concatenated."""
    as_input = opset >= 18
    ax1 = {"axes1": np.array([1], I64)} if as_input else {}
    ax2 = {"axes2": np.array([-1], I64)} if as_input else {}
    nodes, inits = _chain(
        _gemm("h", "x", 3, 24, 13),
        (helper.make_node("Reshape", ["h", "shape"], ["hr"]), {"shape": np.array([1, 4, 6], I64)}),
        (helper.make_node("ReduceMax", ["hr", "axes1"] if as_input else ["hr"], ["mx"], name="rmax", keepdims=0,
                          **({} if as_input else {"axes": [1]})), ax1),
        (helper.make_node("ReduceMin", ["hr", "axes2"] if as_input else ["hr"], ["mn"], name="rmin", keepdims=1,
                          **({} if as_input else {"axes": [-1]})), ax2),
        (helper.make_node("Flatten", ["mn"], ["mnf"]), {}),
        (helper.make_node("Concat", ["mx", "mnf"], ["cat"], axis=1), {}),
        _gemm("y", "cat", 10, 2, 14),
    )
    return nodes, inits, [1, 3]


def broadcast_bound_net(opset):
    """Max of a (1, 4) tensor with a (3, 4) constant: the bound broadcasts the data to (3, 4)."""
    nodes, inits = _chain(
        _gemm("h", "x", 3, 4, 15),
        (helper.make_node("Max", ["h", "c"], ["m"], name="floor3"), {"c": f32(3, 4, seed=16)}),
        (helper.make_node("Flatten", ["m"], ["mf"], axis=0), {}),
        _gemm("y", "mf", 12, 2, 17),
    )
    return nodes, inits, [1, 3]


NETS = {"clip": clip_mlp, "hardsigmoid_abs": hard_sigmoid_abs_mlp, "max_min": max_min_mlp, "reduce": reduce_max_net,
        "broadcast_bound": broadcast_bound_net}
OPSETS = {"clip": [7, 11, 13, 21], "hardsigmoid_abs": [7, 13], "max_min": [8, 13], "reduce": [11, 13, 18],
          "broadcast_bound": [8, 13]}


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    import onnx

    from conftest import make_model
    from regionaudit.importer import import_model

    folder = tmp_path_factory.mktemp("kinks")
    out = {}
    for name, make in NETS.items():
        for opset in OPSETS[name]:
            nodes, inits, shape = make(opset)
            path = folder / f"{name}_{opset}.onnx"
            onnx.save(make_model(nodes, shape, inits, opset), str(path))
            out[name, opset] = import_model(path)
    return out


CASES = [(n, o) for n in NETS for o in OPSETS[n]]


@pytest.mark.parametrize("name,opset", CASES)
def test_imports_and_matches_onnxruntime(imported, name, opset):
    v = imported[name, opset].validation
    assert v["reference"] == "onnxruntime"
    assert v["max_rel_err"] < 1e-6, v


def _segments(net, n, seed, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    a = scale * torch.randn(n, *net.input_shape, dtype=torch.float64, generator=g)
    b = scale * torch.randn(n, *net.input_shape, dtype=torch.float64, generator=g)
    return a, b


@pytest.mark.parametrize("name,opset", CASES)
def test_knots_equal_the_walk(imported, name, opset):
    net = imported[name, opset].network
    a, b = _segments(net, 4, 3)
    traces = trace_segments(net, a, b)
    per_layer = dict.fromkeys(net.kink_names, 0)
    for s, d in enumerate(traces):
        w = walk_segment(net, a[s], b[s])
        assert_same_trace(d, w)
        assert midpoint_check(net, d, a[s], b[s]) < 1e-9
        for k, v in d.knots_per_layer.items():
            per_layer[k] += v
    # every new kink node is crossed, so each kind's crossings are exercised
    assert all(v > 0 for v in per_layer.values()), per_layer


def test_clip_crosses_at_both_bounds(imported):
    """A ReLU6 unit crosses where z = 0 and where z = 6: the walk and the layerwise pass find the
    knots at exactly those values (interpolated z there is the bound)."""
    net = imported["clip", 13].network
    clip = next(i for i, n in enumerate(net.nodes) if isinstance(n, ir.Clip) and n.name == "relu6")
    a, b = _segments(net, 6, 5)
    hits = {0.0: 0, 6.0: 0}
    for s, tr in enumerate(trace_segments(net, a, b)):
        tt = tr.t[1:-1, None]
        z = net.forward_all((1 - tt) * a[s].reshape(1, -1) + tt * b[s].reshape(1, -1))[net.nodes[clip].inputs[0]]
        z = z.reshape(z.shape[0], -1)
        for bound in hits:
            hits[bound] += int(((z - bound).abs() < 1e-9).any(dim=1).sum())
    assert hits[0.0] > 0 and hits[6.0] > 0, hits


def test_neurons_count_one_unit_per_element_and_windows_apart(imported):
    clip = imported["clip", 13].network
    assert clip.neurons == 12 + 10 and clip.maxpool_windows == 0
    hs = imported["hardsigmoid_abs", 13].network
    assert hs.neurons == 10 + 8
    mm = imported["max_min", 13].network
    assert mm.neurons == 6 + 6  # Max(x, 0) is a ReLU, Min(x, 1.5) a one-sided Clip
    assert mm.maxpool_windows == 8 + 8  # Max of two, Min of two data tensors and a constant
    red = imported["reduce", 13].network
    assert red.neurons == 0 and red.maxpool_windows == 6 + 4


@pytest.mark.parametrize("one_by_one", [False, True], ids=["chunked", "one-direction-at-a-time"])
@pytest.mark.parametrize("name", list(NETS))
def test_distance_equals_autograd_formula(imported, name, one_by_one, monkeypatch):
    """Also with each direction's squares (a window maximum's every candidate at once) added one
    direction at a time, as where a direction fills the cache."""
    from regionaudit.analysis import distance as D

    if one_by_one:
        monkeypatch.setattr(D, "SQUARES_ONE_BY_ONE", 1)
    net = imported[name, OPSETS[name][-1]].network
    pts = 2 * torch.randn(4, *net.input_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    got = boundary_distances(net, pts)
    for k in range(4):
        assert got[k].distance == pytest.approx(plainpath.distance(net, pts[k])[0], rel=1e-12)
        node = net.nodes[net.kink_ids[net.kink_names.index(got[k].node)]]
        limit = node.units if isinstance(node, ir.UnitKink) else node.windows
        assert 0 <= got[k].unit < limit


def test_distance_names_clip_units_by_their_unit_index(imported):
    """A point next to a ReLU6 unit's upper bound: the nearest unit is that unit (index < units)."""
    net = imported["clip", 13].network
    gen = torch.Generator().manual_seed(9)
    pts = 2 * torch.randn(64, *net.input_shape, dtype=torch.float64, generator=gen)
    clips = [d for d in boundary_distances(net, pts) if d.node in ("relu6", "hardtanh")]
    assert clips
    for d in clips:
        assert 0 <= d.unit < net.nodes[net.kink_ids[net.kink_names.index(d.node)]].units


@pytest.mark.parametrize("opset", [9, 13])
def test_soft_shrink_and_reduce_l1_match_onnxruntime_and_the_walk(convert, opset):
    nodes, inits = _chain(
        _gemm("h", "x", 3, 12, 20),
        (helper.make_node("Shrink", ["h"], ["s"], name="shrink", lambd=0.7, bias=0.7), {}),
        (helper.make_node("Reshape", ["h", "shape"], ["h3"]), {"shape": np.array([1, 3, 4], I64)}),
        (helper.make_node("ReduceL1", ["h3"], ["l1"], name="l1", axes=[1], keepdims=0), {}),
        (helper.make_node("Concat", ["s", "l1"], ["cat"], axis=1), {}),
        _gemm("y", "cat", 16, 2, 21),
    )
    imported = convert(nodes, [1, 3], inits, opset)
    assert imported.validation["reference"] == "onnxruntime" and imported.validation["max_rel_err"] < 1e-6
    net = imported.network
    assert net.neurons == 12 + 4 * 3
    a, b = _segments(net, 3, 4)
    totals = dict.fromkeys(net.kink_names, 0)
    for s, d in enumerate(trace_segments(net, a, b)):
        assert_same_trace(d, walk_segment(net, a[s], b[s]))
        for k, v in d.knots_per_layer.items():
            totals[k] += v
    assert all(v > 0 for v in totals.values()), totals


def test_hard_shrink_is_a_discontinuity(convert):
    nodes = [helper.make_node("Shrink", ["x"], ["y"], name="hard", lambd=0.5)]
    with pytest.raises(Exception, match="discontinuous: Shrink 'hard' \\(bias 0 differs from lambd 0.5"):
        convert(nodes, [1, 3])


def test_knots_through_the_moves_equal_the_walk(convert):
    """Kinks between the affine moves: the layerwise pass and the walk agree knot for knot."""
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
    ok(imported)
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


@pytest.mark.parametrize("bounds", ["relu6", "upper-only", "per-element"])
def test_clip_forward_and_offsets_are_the_formulas(bounds):
    """Clip with one number per bound (a clamp, offsets by numbers) or per-element bounds: min(max(z,
    lo), hi) and the offsets z - lo, z - hi, exactly."""
    gen = torch.Generator().manual_seed(4)
    shape = (3, 4, 5)
    if bounds == "relu6":
        lo, hi = torch.zeros(shape, dtype=torch.float64), torch.full(shape, 6.0, dtype=torch.float64)
    elif bounds == "upper-only":
        lo, hi = torch.full(shape, -torch.inf, dtype=torch.float64), torch.full(shape, 0.5, dtype=torch.float64)
    else:
        lo = torch.randn(shape, generator=gen, dtype=torch.float64)
        hi = lo + torch.rand(shape, generator=gen, dtype=torch.float64)
    node = ir.Clip("c", (0,), shape, lo=lo, hi=hi)
    assert (node.bounds() is None) == (bounds == "per-element")
    z = 4 * torch.randn(6, *shape, generator=gen, dtype=torch.float64)
    assert torch.equal(node.forward([z]), torch.minimum(torch.maximum(z, lo), hi))
    want = torch.cat([(z - lo).reshape(6, -1), (z - hi).reshape(6, -1)], dim=1)
    assert torch.equal(node.offsets(z), want)
    # in place, for a density pass's own copy: the same values, written into z where it can
    own = z.clone()
    out = node.forward_inplace(own)
    assert torch.equal(out, torch.minimum(torch.maximum(z, lo), hi))
    assert (out.data_ptr() == own.data_ptr()) == (bounds != "per-element")


@pytest.mark.parametrize("chunk", [units.BELOW_CHUNK_BYTES, 500, 1], ids=["default", "uneven", "one-row"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("bounds", ["relu6", "upper-only", "per-element"])
def test_clip_crossings_read_without_the_offsets_are_theirs(bounds, dtype, chunk, monkeypatch):
    """The scan for a Clip's crossings compares z with its bounds and reads only the candidates'
    offsets: the sides, values and crossings of the offsets themselves, exactly, units sitting
    on a bound included; its rows compared a chunk at a time, of any size."""
    monkeypatch.setattr(units, "BELOW_CHUNK_BYTES", chunk)
    gen = torch.Generator().manual_seed(5)
    shape = (2, 3, 4)
    if bounds == "relu6":
        lo, hi = torch.zeros(shape, dtype=dtype), torch.full(shape, 6.0, dtype=dtype)
    elif bounds == "upper-only":
        lo, hi = torch.full(shape, -torch.inf, dtype=dtype), torch.full(shape, 0.5, dtype=dtype)
    else:
        lo = torch.randn(shape, generator=gen, dtype=dtype)
        hi = lo + torch.rand(shape, generator=gen, dtype=dtype)
    node = ir.Clip("c", (0,), shape, lo=lo, hi=hi)
    z = 5 * torch.randn(40, *shape, generator=gen, dtype=dtype)
    z[3], z[7, 0] = hi, lo[0]  # on a bound
    off = node.offsets(z)
    assert torch.equal(node.below(z), off < 0)
    rows, cols = torch.randint(0, 40, (50,), generator=gen), torch.randint(0, off.shape[1], (50,), generator=gen)
    assert torch.equal(node.offsets_at(z, rows, cols), off[rows, cols])
    pair_ok = torch.ones(39, dtype=torch.bool)
    pair_ok[5] = False
    floor = torch.full((39,), 1e-3, dtype=dtype)
    got, want = kink_crossings(node, z, pair_ok, floor), unit_crossings(off, pair_ok, floor)
    assert want[0].numel() > 20
    assert all(torch.equal(g, w) for g, w in zip(got, want))
    # tangents: one product with each point's slopes, the pattern's linear piece exactly
    dz = torch.randn(3, 40, *shape, generator=gen, dtype=dtype)
    want = ir.UnitKink.tangent(node, z, dz)
    assert torch.equal(node.tangent(z, dz), want)
    assert torch.equal(node.tangent(z[:1], dz[:, :1]), ir.UnitKink.tangent(node, z[:1], dz[:, :1]))
    assert torch.equal(node.tangent(z, dz[:, :1]), ir.UnitKink.tangent(node, z, dz[:, :1]))  # shared by the points
    assert torch.equal(node.tangent(z, dz, inplace=True), want) and torch.equal(dz, want)


@pytest.mark.parametrize("lo,hi,bounded", [(0.0, 6.0, True), (-1.0, 1.0, True), (0.0, 1.0, True), (-torch.inf, 0.5, True),
                                           (0.5, 2.0, False), (-3.0, -1.0, False)])
def test_clip_is_bounded_by_its_input_only_where_its_bounds_hold_zero(lo, hi, bounded):
    """A Clip whose bounds hold 0 never raises the rounding scale (its output lies between 0 and
    its input), so the density pass skips measuring it; any other Clip is measured."""
    from regionaudit.analysis._common import bounded_by_inputs

    shape = (4, 5)
    node = ir.Clip("c", (0,), shape, lo=torch.full(shape, lo, dtype=torch.float64), hi=torch.full(shape, hi, dtype=torch.float64))
    assert bounded_by_inputs(node) == bounded
    z = 3 * torch.randn(50, *shape, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    assert bool((node.forward([z]).abs() <= z.abs()).all()) == bounded


def test_selections_are_bounded_by_their_inputs_and_a_constant_candidate_is_not():
    """Concat, Take, zero Pad and a Stack without a constant put out their inputs' values (and
    zeros), so the density pass skips measuring them; a Stack's constant candidate is a value
    of its own and is measured."""
    from regionaudit.analysis._common import bounded_by_inputs

    gen = torch.Generator().manual_seed(8)
    x, y = torch.randn(20, 3, 4, generator=gen, dtype=torch.float64), torch.randn(20, 2, 4, generator=gen, dtype=torch.float64)
    big = torch.full((3, 4), 50.0, dtype=torch.float64)
    nodes = [
        (ir.Concat("c", (0, 1), (5, 4), axis=0), [x, y]),
        (ir.Take("t", (0,), (2, 5), index=torch.tensor([[11, 0, 3, 3, 7], [1, 2, 9, 10, 4]])), [x]),
        (ir.Pad("p", (0,), (5, 7), pads=(1, 2, 1, 1)), [x]),
        (ir.Stack("s", (0, 0), (3, 4, 2)), [x, x.flip(0)]),
        (ir.Stack("k", (0,), (3, 4, 2), const=big), [x]),
    ]
    for node, xs in nodes:
        largest = max(float(v.abs().max()) for v in xs)
        assert bounded_by_inputs(node) == (float(node.forward(xs).abs().max()) <= largest), node.name
    assert [bounded_by_inputs(n) for n, _ in nodes] == [True, True, True, True, False]


@pytest.mark.parametrize("small", [0, crossings.SMALL_MASK], ids=["by-words", "default"])
@pytest.mark.parametrize("cols", [0, 1, 7, 8, 13, 64, 203])
@pytest.mark.parametrize("rows_hit", ["none", "few", "most"])
def test_scan_nonzero_is_torchs(cols, rows_hit, small, monkeypatch):
    """The scans' `nonzero` (8-byte words, then their bytes; only the rows holding a True where
    few do; torch's on small masks) finds torch's entries in torch's order: any width (a tail
    shorter than a word), a mask that does not start a word, rows with nothing."""
    monkeypatch.setattr(crossings, "SMALL_MASK", small)
    gen = torch.Generator().manual_seed(cols)
    base = torch.rand(41, cols, generator=gen) < 0.05
    keep = {"none": torch.zeros(41, dtype=torch.bool), "few": torch.arange(41) % 9 == 4, "most": torch.arange(41) % 9 != 4}
    base &= keep[rows_hit][:, None]
    if cols and rows_hit != "none":
        base[keep[rows_hit].nonzero()[-1], -1] = True  # the last entry, in a tail where there is one
    for mask in (base, base[1:], base.t().contiguous().t()):  # (offset not a word; strided)
        want = mask.nonzero(as_tuple=True)
        got = crossings.nonzero(mask)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
        assert (want[0].numel() > 0) == (rows_hit != "none" and cols > 0)
