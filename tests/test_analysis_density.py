"""Layerwise knot insertion (density.py) against the sequential walk (walk.py) and by hand."""

from __future__ import annotations

import math

import pytest
import torch

import netfactory as nf
from regionaudit import ir
from regionaudit.analysis import density, joins, knots
from regionaudit.analysis._common import needed_nodes, where_true
from regionaudit.analysis.density import SegmentTrace, midpoint_check, trace_segments
from regionaudit.analysis.walk import walk_segment


def assert_same_trace(d: SegmentTrace, w: SegmentTrace, tol: float = 1e-9) -> None:
    assert d.t.shape == w.t.shape, (d.regions, w.regions)
    assert float((d.t - w.t).abs().max()) < tol
    assert d.knots_per_layer == w.knots_per_layer
    assert torch.equal(d.made_by.cpu(), w.made_by.cpu())  # each knot from the same kink node
    assert sum(d.knots_per_layer.values()) == d.knots == w.knots
    assert d.regions == w.regions
    assert not d.truncated and not w.truncated


@pytest.mark.parametrize("kind", nf.KINDS + nf.TAIL_KINDS)
def test_layerwise_equals_walk(kind):
    total_regions = 0
    for seed in range(3):
        net = nf.make(kind, seed)
        a, b = nf.segments(net, 3, 1000 + seed)
        traces = trace_segments(net, a, b)
        assert len(traces) == 3
        for s, d in enumerate(traces):
            w = walk_segment(net, a[s], b[s])
            assert_same_trace(d, w)
            assert float((d.outputs - w.outputs).abs().max()) < 1e-9
            assert midpoint_check(net, d, a[s], b[s]) < 1e-9
            assert d.t[0] == 0.0 and d.t[-1] == 1.0
            assert bool((d.t[1:] - d.t[:-1] >= 1e-12).all())
            assert set(d.knots_per_layer) == {net.nodes[i].name for i in net.kink_ids}
            total_regions += d.regions
    assert total_regions > 9  # the segments do cross boundaries


def test_outputs_are_the_network_at_the_knots():
    net = nf.make("cnn_max", 4)
    a, b = nf.segments(net, 2, 5)
    for s, tr in enumerate(trace_segments(net, a, b)):
        tt = tr.t[:, None]
        direct = net.forward((1 - tt) * a[s].reshape(1, -1) + tt * b[s].reshape(1, -1))
        assert float((direct - tr.outputs).abs().max()) < 1e-10
        assert tr.outputs.shape == (tr.t.shape[0], net.n_outputs)


@pytest.mark.parametrize("kind", ["mlp", "cnn_max", "resnet", "cnn_concat"])
def test_reversed_segment_mirrors_knots(kind):
    net = nf.make(kind, 11)
    a, b = nf.segments(net, 4, 12)
    fwd = trace_segments(net, a, b)
    rev = trace_segments(net, b, a)
    for f, r in zip(fwd, rev):
        assert f.regions == r.regions
        assert f.knots_per_layer == r.knots_per_layer
        assert float((f.t - (1 - r.t.flip(0))).abs().max()) < 1e-9
        assert float((f.outputs - r.outputs.flip(0)).abs().max()) < 1e-9


def test_segment_inside_one_region():
    from regionaudit.analysis.distance import boundary_distances

    net = nf.make("cnn_avg", 2)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(4, *net.input_shape, dtype=torch.float64, generator=gen)
    dist = boundary_distances(net, x)
    u = torch.randn(4, *net.input_shape, dtype=torch.float64, generator=gen)
    u = u / u.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1)
    r = torch.tensor([p.distance for p in dist], dtype=torch.float64).reshape(-1, 1, 1, 1)
    traces = trace_segments(net, x - 0.45 * r * u, x + 0.45 * r * u)
    for tr in traces:
        assert tr.regions == 1 and tr.knots == 0
        assert sum(tr.knots_per_layer.values()) == 0
        assert tr.t.tolist() == [0.0, 1.0]
    # a zero-length segment is one region too
    same = trace_segments(net, x[:1], x[:1])[0]
    assert same.regions == 1 and walk_segment(net, x[0], x[0]).regions == 1


def test_batching_and_chunking_do_not_change_numbers():
    for kind in ["mlp", "cnn_max", "concat"]:
        net = nf.make(kind, 21)
        a, b = nf.segments(net, 7, 22)
        ref = trace_segments(net, a, b)
        # one segment per call: the same knots; positions and outputs equal up to float rounding
        # (BLAS may round differently for a different number of rows)
        for s in range(7):
            one = trace_segments(net, a[s : s + 1], b[s : s + 1])[0]
            assert one.regions == ref[s].regions and one.knots_per_layer == ref[s].knots_per_layer
            assert float((one.t - ref[s].t).abs().max()) < 1e-13
            assert float((one.outputs - ref[s].outputs).abs().max()) < 1e-12
        # a tiny budget: batches shrink and segments split into sub-segments
        per_knot = density.bytes_per_knot(net)
        done = []
        small = trace_segments(net, a, b, max_memory=per_knot * 9, progress=done.append)
        assert sum(done) == 7 and all(n > 0 for n in done)
        for r, s in zip(ref, small):
            assert r.regions == s.regions
            assert r.knots_per_layer == s.knots_per_layer
            assert float((r.t - s.t).abs().max()) < 1e-12
            assert float((r.outputs - s.outputs).abs().max()) < 1e-10


def test_the_first_pass_takes_the_segments_the_budget_holds(monkeypatch):
    """Not one segment at first (a GPU runs 32 in about the time of one): as many as would fit
    with FIRST_KNOTS knots each, in a quarter of the budget."""
    net = nf.make("mlp", 3)
    a, b = nf.segments(net, 12, 5)
    ref = trace_segments(net, a[:1], b[:1])[0]
    sizes = []
    run = density._Pass.run
    monkeypatch.setattr(density._Pass, "run", lambda self, items, *args: sizes.append(len(items)) or run(self, items, *args))
    traces = trace_segments(net, a, b)
    assert sizes == [12]
    assert_same_trace(traces[0], ref, tol=1e-13)
    per_knot = density.bytes_per_knot(net)
    sizes.clear()
    assert [tr.regions for tr in trace_segments(net, a, b, max_memory=per_knot * 4 * density.FIRST_KNOTS * 3)] == [
        tr.regions for tr in traces
    ]
    assert sizes[0] == 3 and sum(sizes) == 12


def test_a_leaky_relu_reads_its_slope_once_and_again_when_converted():
    """`scalar_slope` is the slope as the node's dtype holds it (a GPU waits for every read of a
    device number, so it is read when the slope is set), None for a slope per unit."""
    slope = torch.tensor(0.1, dtype=torch.float64)
    node = ir.LeakyRelu("r", (0,), (3,), slope=slope, op_type="LeakyRelu")
    assert node.scalar_slope() == 0.1
    node.convert(torch.float32, torch.device("cpu"))
    assert node.scalar_slope() == float(torch.tensor(0.1, dtype=torch.float32)) != 0.1
    z = torch.tensor([[-1.0, 0.5, -2.0]])
    assert torch.equal(node.forward([z]), torch.nn.functional.leaky_relu(z, node.scalar_slope()))
    prelu = ir.LeakyRelu("p", (0,), (3,), slope=torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64), op_type="PRelu")
    assert prelu.scalar_slope() is None
    assert torch.allclose(prelu.forward([z.double()]), torch.tensor([[-0.1, 0.5, -0.6]], dtype=torch.float64))


def test_a_pass_that_outgrows_its_budget_goes_on_in_groups():
    """Knots that outgrow half the budget mid-network are split into groups of knots that go on
    from that node: the nodes before it saw each knot once, and the trace is the unsplit one."""
    net = nf.make("cnn_max", 0)
    a, b = nf.segments(net, 1, 4)
    # a --max-knots (here never reached) keeps the max pool after the first ReLU a node of its
    # own, as this test wants: its crossings are found after the ReLU's, not with them
    unbounded = 10**9
    ref = trace_segments(net, a, b, max_knots=unbounded)[0]
    assert_same_trace(trace_segments(net, a, b)[0], ref, tol=1e-12)  # found with the ReLU's
    made = [ref.knots_per_layer[net.nodes[i].name] for i in net.kink_ids]  # 72, 43, 16, 19
    first_conv, second_conv = [i for i, node in enumerate(net.nodes) if isinstance(node, ir.Conv)]
    rows = {first_conv: 0, second_conv: 0}
    for i in rows:
        forward = net.nodes[i].forward

        def counted(xs, i=i, forward=forward):
            rows[i] += xs[0].shape[0]
            return forward(xs)

        net.nodes[i].forward = counted
    # the first ReLU's knots fit in half the budget, the max pool's do not
    cap = 2 * (2 + made[0]) + 10
    assert 2 * (2 + made[0] + made[1]) > cap
    per_knot = density.bytes_per_knot(net)
    split = trace_segments(net, a, b, max_memory=per_knot * cap, max_knots=unbounded)[0]
    assert_same_trace(split, ref, tol=1e-12)
    assert rows[first_conv] == 2  # the segment's two ends, once: nothing started over
    present = 2 + made[0] + made[1]  # knots when the second convolution runs
    assert present < rows[second_conv] <= present + 8  # and the knots the groups share


def test_join_exactly_at_a_knot_counts_once():
    """Sub-segments joined exactly at a boundary crossing: the knot counts once, credited right."""
    from regionaudit.analysis import density as dens

    net = nf.make("cnn_max", 6)
    a, b = nf.segments(net, 1, 7)
    ref = trace_segments(net, a, b)[0]
    A = dens._as_points(net, a)
    B = dens._as_points(net, b)
    order = needed_nodes(net)
    runner = dens._Pass(net, order, net.last_use(order))
    for k in [1, ref.knots // 2, ref.knots]:
        tk = float(ref.t[k])
        pieces = sum(runner.run([dens._Item(0, 0.0, tk), dens._Item(0, tk, 1.0)], A, B, None, 10**9, False), [])
        (joined,) = dens._finish(net, [joins.stitch(net, order, pieces, A[0], B[0])], None)
        assert joined.regions == ref.regions
        assert joined.knots_per_layer == ref.knots_per_layer
        assert float((joined.t - ref.t).abs().max()) < 1e-12
        # and a join inside a region is no knot
        tm = float((ref.t[k] + ref.t[k - 1]) / 2)
        pieces = sum(runner.run([dens._Item(0, tm, 1.0), dens._Item(0, 0.0, tm)], A, B, None, 10**9, False), [])
        (joined,) = dens._finish(net, [joins.stitch(net, order, pieces, A[0], B[0])], None)
        assert joined.regions == ref.regions and joined.knots_per_layer == ref.knots_per_layer


def test_max_knots_truncates():
    net = nf.make("cnn_avg", 1)
    a, b = nf.segments(net, 3, 2)
    full = trace_segments(net, a, b)
    cut = trace_segments(net, a, b, max_knots=5)
    for f, c in zip(full, cut):
        assert f.knots > 5
        assert c.truncated and c.knots == 5 and c.regions == 6
        assert sum(c.knots_per_layer.values()) == 5
        assert c.t[0] == 0.0 and c.t[-1] == 1.0
    enough = trace_segments(net, a, b, max_knots=max(f.knots for f in full))
    for f, e in zip(full, enough):
        assert not e.truncated and torch.equal(f.t, e.t)


def _hand_network() -> ir.Network:
    """x in R^1: u = relu([x, -x, x, x]), v = [u0 - u1, u0 + u1 - 0.5], w = relu(v), out = w.

    Unit u2 duplicates u0 and u3 too (simultaneous crossings are one knot); v0 = x crosses zero
    exactly at the layer-1 knot (an exact zero at an existing knot: no new knot); v1 = |x| - 0.5
    crosses at x = ±0.5.
    """
    f64 = torch.float64
    nodes = [
        ir.Input("x", (), (1,)),
        ir.MatMul("fc1", (0,), (4,), weight=torch.tensor([[1.0, -1.0, 1.0, 1.0]], dtype=f64), bias=None),
        ir.LeakyRelu("relu1", (1,), (4,), slope=torch.tensor(0.0, dtype=f64)),
        ir.MatMul(
            "fc2", (2,), (2,),
            weight=torch.tensor([[1.0, 1.0], [-1.0, 1.0], [0.0, 0.0], [0.0, 0.0]], dtype=f64),
            bias=torch.tensor([0.0, -0.5], dtype=f64),
        ),
        ir.LeakyRelu("relu2", (3,), (2,), slope=torch.tensor(0.0, dtype=f64)),
        ir.Reshape("pool_in", (4,), (1, 2)),
        ir.MaxPool("pool", (5,), (1, 1), kernel=(2,), strides=(2,), pads=(0, 0), dilations=(1,)),
        ir.Reshape("pool_out", (6,), (1,)),
        ir.Concat("out", (4, 7), (3,), axis=0),
    ]
    return ir.Network(nodes=nodes, input_shape=(1,), graph_input_shape=(1,), output=8)


def test_hand_example_with_exact_coincidences():
    net = _hand_network()
    a = torch.tensor([[-1.0]], dtype=torch.float64)
    b = torch.tensor([[1.0]], dtype=torch.float64)
    tr = trace_segments(net, a, b)[0]
    # knots: x = -0.5 (relu2), x = 0 (relu1; relu2's v0 is exactly zero there), x = 0.5 (relu2)
    assert tr.t.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert tr.knots_per_layer == {"relu1": 1, "relu2": 2, "pool": 0}
    # pool = max(relu(x), relu(|x| - 0.5)): relu(|x| - 0.5) leads for x < -0.5, both are 0 on
    # [-0.5, 0] (a tie that stays equal: no knot), relu(x) leads for x > 0. The leader changes only
    # at existing knots, so the pool contributes none.
    expected = torch.tensor(
        [[0.0, 0.5, 0.5], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.5, 0.0, 0.5], [1.0, 0.5, 1.0]], dtype=torch.float64
    )
    assert torch.equal(tr.outputs, expected)
    w = walk_segment(net, a[0], b[0])
    assert_same_trace(tr, w, tol=1e-15)
    # start exactly on a boundary (x = 0): that boundary is the segment's end, not a knot
    tr2 = trace_segments(net, torch.tensor([[0.0]]), torch.tensor([[1.0]]))[0]
    assert tr2.t.tolist() == [0.0, 0.5, 1.0] and tr2.knots_per_layer["relu2"] == 1
    assert walk_segment(net, torch.tensor([0.0]), torch.tensor([1.0])).t.tolist() == [0.0, 0.5, 1.0]


def _cancelling_network(big: float) -> ir.Network:
    """x in R^2: u = relu([big + 1e-3 x0 + x1, big + x1]) (both positive), z = relu(u0 - u1).

    z's input is 1e-3 x0, computed as the difference of two numbers near `big`: its rounding
    (about big x 1e-16) over its slope along the segments below (2e-3) puts its one crossing
    anywhere within about 1e-7 in t at big = 1e6, far more than the 1e-12 that two knots must be
    apart.
    """
    f64 = torch.float64
    nodes = [
        ir.Input("x", (), (2,)),
        ir.MatMul("fc1", (0,), (2,), weight=torch.tensor([[1e-3, 0.0], [1.0, 1.0]], dtype=f64),
                  bias=torch.tensor([big, big], dtype=f64)),
        ir.LeakyRelu("relu1", (1,), (2,), slope=torch.tensor(0.0, dtype=f64)),
        ir.MatMul("fc2", (2,), (1,), weight=torch.tensor([[1.0], [-1.0]], dtype=f64), bias=None),
        ir.LeakyRelu("relu2", (3,), (1,), slope=torch.tensor(0.0, dtype=f64)),
    ]
    return ir.Network(nodes=nodes, input_shape=(2,), graph_input_shape=(2,), output=4)


def test_a_crossing_lost_in_rounding_is_one_knot_for_both_analyses():
    """A unit whose computed value is rounding noise around its crossing changes sign once: the
    layerwise analysis and the walk each find one knot (the walk takes a unit within the rounding
    floor of zero as at zero, as the layerwise analysis does, and does not step to the noise's
    next sign change)."""
    net = _cancelling_network(1e6)
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(16, 2, generator=g, dtype=torch.float64)
    a = torch.stack([torch.full((16,), -1.0, dtype=torch.float64), x1[:, 0]], dim=1)
    b = torch.stack([torch.full((16,), 1.0, dtype=torch.float64), x1[:, 1]], dim=1)
    for s, tr in enumerate(trace_segments(net, a, b)):
        assert tr.knots_per_layer == {"relu1": 0, "relu2": 1}
        assert abs(float(tr.t[1]) - 0.5) < 1e-6  # x0 = 0
        w = walk_segment(net, a[s], b[s])
        assert w.knots_per_layer == {"relu1": 0, "relu2": 1}
        assert abs(float(w.t[1]) - 0.5) < 1e-6


def test_maxpool_equal_candidates_are_no_knot():
    """Two pooled units that are identical functions (a duplicated channel): ties stay equal."""
    g = nf.Builder((3,), 5)
    h = g.relu(g.dense(0, 4))
    x = g.concat([h, h], axis=0)  # (8,)
    x = g.reshape(x, (1, 2, 4))
    x = g.transpose(x, (0, 2, 1))  # windows of 2 pair identical copies
    x = g.reshape(x, (1, 8))
    x = g.maxpool(x, 2, 2)
    net = g.network(g.dense(g.flatten(x), 2))
    a, b = nf.segments(net, 5, 9)
    for s, tr in enumerate(trace_segments(net, a, b)):
        pool = [n.name for n in net.nodes if isinstance(n, ir.MaxPool)][0]
        assert tr.knots_per_layer[pool] == 0
        assert_same_trace(tr, walk_segment(net, a[s], b[s]))


def _twin_relus(twin: str) -> ir.Network:
    """relu(h) and relu(k h), h = W x + c, as two nodes, summed: both kink where h crosses zero,
    so the net has exactly the knots of relu(h) alone. k h is a Neg after h ("neg", as torch
    exports -h) or a copy of the dense layer scaled by k = -2 or 2 (an importer's folding)."""
    g = nf.Builder((6,), 11)
    h = g.dense(0, 24)
    dense = g.nodes[h]
    if twin == "neg":
        other = g._add(ir.Scale(g.name("Neg"), (h,), (24,), mul=torch.tensor(-1.0, dtype=torch.float64), add=None))
    else:
        k = -2.0 if twin == "dense-2" else 2.0
        other = g._add(ir.MatMul(g.name("Gemm"), (0,), (24,), weight=k * dense.weight, bias=k * dense.bias))
    return g.network(g.dense(g.sum(g.relu(h), g.relu(other)), 3))


@pytest.mark.parametrize("twin", ["neg", "dense-2", "dense2"])
def test_two_nodes_that_kink_at_the_same_points_count_each_point_once(twin):
    """In float64 the second node's crossings fall on the first's knots (within T_MERGE): one knot
    each, as the walk finds and as relu(h) alone has. (float32 can round them apart and count
    two; its audits say so in a note.)"""
    net = _twin_relus(twin)
    a, b = nf.segments(net, 4, 12)
    names = [n.name for n in net.nodes if n.is_kink]
    for s, tr in enumerate(trace_segments(net, a, b)):
        assert tr.knots_per_layer[names[0]] == tr.knots > 5 and tr.knots_per_layer[names[1]] == 0
        assert_same_trace(tr, walk_segment(net, a[s], b[s]))


def test_float32_network():
    net = nf.make("resnet", 3).to(dtype=torch.float32)
    a, b = nf.segments(net, 6, 8)
    traces = trace_segments(net, a.float(), b.float())
    exact = trace_segments(nf.make("resnet", 3), a, b)
    assert [tr.regions for tr in traces] == [tr.regions for tr in exact]
    for s, tr in enumerate(traces):
        assert float((tr.t - exact[s].t).abs().max()) < 1e-4
        assert tr.t.dtype == torch.float64 and tr.outputs.dtype == torch.float32
        assert midpoint_check(net, tr, a[s], b[s]) < 1e-4
        assert abs(tr.regions - walk_segment(net, a[s], b[s]).regions) <= 1


def test_flat_rows_are_accepted():
    net = nf.make("cnn_avg", 0)
    a, b = nf.segments(net, 2, 3)
    t1 = trace_segments(net, a, b)
    t2 = trace_segments(net, a.reshape(2, -1), b.reshape(2, -1))
    assert [x.regions for x in t1] == [x.regions for x in t2]
    assert math.isclose(float(t1[0].t.sum()), float(t2[0].t.sum()))


@pytest.mark.parametrize("pad", [0, 1])
def test_large_disjoint_pool_windows_equal_walk(pad):
    """3x3 windows at stride 3: the winners come from one reduction over a copy in window order."""
    g = nf.Builder((2, 7, 7), 4)
    x = g.maxpool(g.relu(g.conv(0, 3, 2, pad=1)), 3, 3, pad=pad)
    net = g.network(g.dense(g.flatten(g.relu(g.conv(x, 2, 1))), 2))
    a, b = nf.segments(net, 3, 9)
    pool_knots = 0
    for s, d in enumerate(trace_segments(net, a, b)):
        assert_same_trace(d, walk_segment(net, a[s], b[s]))
        assert midpoint_check(net, d, a[s], b[s]) < 1e-9
        pool_knots += d.knots_per_layer[net.nodes[x].name]
    assert pool_knots > 0


def _later_relu_pool_net(after: str, seed: int):
    """conv, ReLU, conv, ReLU, 2x2 max pool, then `after` ("conv": a layer that refill runs at
    the old knots, so the pool waits for it; "scale": a batch-norm-like node, so the pool is
    made), a ReLU and a dense layer."""
    g = nf.Builder((2, 10, 10), seed)
    x = g.relu(g.conv(g.relu(g.conv(0, 4, 3, pad=1)), 4, 3, pad=1))
    x = g.maxpool(x, 2, 2)
    x = g.conv(x, 4, 3, pad=1) if after == "conv" else g.scale(x)
    return g.network(g.dense(g.flatten(g.relu(x)), 3))


@pytest.mark.parametrize("which", ["first", "later-then-conv", "later-then-scale"])
@pytest.mark.parametrize("flat", [False, True], ids=["random", "constant-images"])
def test_a_relu_and_its_max_pool_insert_their_knots_at_once(which, flat, monkeypatch):
    """Where a ReLU (the first, or a later one) is read alone by a max pool, the pool's winner
    changes come from the ReLU's input with the ReLU's crossings, one insertion for both: the
    same knots from the same nodes as the two one after the other, and the walk's counts; with
    constant images every window holds tied lines."""
    from regionaudit.analysis import density

    net = nf.make("cnn_max", 2) if which == "first" else _later_relu_pool_net(which.split("-")[-1], 3)
    relus = [i for i in net.kink_ids if isinstance(net.nodes[i], ir.LeakyRelu)]
    relu = relus[0] if which == "first" else relus[1]
    pool = net.nodes[relu + 1]
    assert isinstance(pool, ir.MaxPool) and density.pooled_relus(net, list(range(len(net.nodes)))).get(relu) == relu + 1
    a, b = nf.segments(net, 3, 5 if which == "first" else 7)
    if flat:
        a, b = nf.constant_images(a), nf.constant_images(b)
    searched = []
    search = density.maxpool_crossings
    monkeypatch.setattr(density, "maxpool_crossings", lambda node, *args, **kwargs: searched.append(node.name) or search(node, *args, **kwargs))
    got = density.trace_segments(net, a, b)
    assert pool.name not in searched
    monkeypatch.setattr(density, "pooled_relus", lambda *args, **kwargs: {})
    ref = density.trace_segments(net, a, b)
    assert pool.name in searched
    for s in range(3):
        assert_same_trace(got[s], ref[s], tol=1e-12)
        assert got[s].regions == walk_segment(net, a[s], b[s]).regions
        assert float((got[s].outputs - ref[s].outputs).abs().max()) < 1e-12 * float(ref[s].outputs.abs().max())
    assert sum(tr.knots_per_layer[pool.name] for tr in got) > (0 if flat else 10)


@pytest.mark.parametrize("flat", [False, True], ids=["random", "constant-images"])
def test_a_waiting_pool_takes_its_old_knots_from_the_relus_insertion(flat, monkeypatch):
    """A max pool that waits for the convolution after it (refill) takes its output at the old
    knots from the maxima its ReLU's insertion found with the winners, instead of pooling the
    ReLU's output there again: the same trace (to rounding: the rows in between are interpolated
    alone), with fewer rows pooled."""
    from regionaudit.analysis import density, knots

    net = _later_relu_pool_net("conv", 4)
    pool = next(n for n in net.nodes if isinstance(n, ir.MaxPool))
    a, b = nf.segments(net, 3, 11)
    if flat:
        a, b = nf.constant_images(a), nf.constant_images(b)
    rows = []
    forward = pool.forward
    monkeypatch.setattr(pool, "forward", lambda xs: rows.append(xs[0].shape[0]) or forward(xs))
    got = density.trace_segments(net, a, b)
    pooled, rows[:] = sum(rows), []
    defer = knots.Live.defer_pooled
    monkeypatch.setattr(knots.Live, "defer_pooled", lambda self, i, q, node, old=None: defer(self, i, q, node))
    ref = density.trace_segments(net, a, b)
    assert pooled < sum(rows)
    for s in range(3):
        assert_same_trace(got[s], ref[s], tol=1e-12)
        assert float((got[s].outputs - ref[s].outputs).abs().max()) < 1e-12 * float(ref[s].outputs.abs().max())
        assert got[s].regions == walk_segment(net, a[s], b[s]).regions


def test_where_true_selects_as_a_boolean_index_does():
    g = torch.Generator().manual_seed(5)
    mask = torch.rand(40, generator=g) < 0.3
    x, y = torch.randn(40, generator=g), torch.randn(40, 3, generator=g)
    a, b = where_true(mask, x, y)
    assert torch.equal(a, x[mask]) and torch.equal(b, y[mask]) and a.numel() == int(mask.sum()) > 0
    empty = where_true(torch.zeros(40, dtype=torch.bool), y)[0]
    assert empty.shape == (0, 3)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("n_old, n_new", [(2, 40), (30, 30), (200, 20)])
def test_interpolated_rows_are_the_old_rows_and_their_interpolations(dtype, n_old, n_new):
    """The sparse product places every old row unchanged and gives each new knot the
    interpolation of its interval's ends, as merging lerp's rows does."""
    gen = torch.Generator().manual_seed(n_old + n_new)
    v = torch.randn(n_old, 3, 5, generator=gen, dtype=torch.float64).to(dtype)
    j = torch.sort(torch.randint(0, n_old - 1, (n_new,), generator=gen)).values
    s = torch.rand(n_new, generator=gen, dtype=torch.float64)
    placed = knots.Placement.of(j, s, n_old)
    got = placed.interpolated(v)
    want = placed.merge(v, placed.interpolate(v))
    assert got.shape == want.shape == (n_old + n_new, 3, 5)
    assert torch.equal(got[placed.pos_old], v)
    eps = torch.finfo(dtype).eps
    assert torch.allclose(got, want, rtol=4 * eps, atol=4 * eps * float(v.abs().max()))
    ends = v[j], v[j + 1]
    assert bool(((got[placed.pos_new] - ends[0]) * (got[placed.pos_new] - ends[1]) <= 4 * eps * float(v.abs().max()) ** 2).all())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_rows_made_alone_are_those_of_all_rows_to_the_bit(dtype):
    """`rows_of` some rows, old and new, gives them as `interpolated` gives them among all: the
    same sparse sums (an old row alone is itself and itself again at weight 0, a column twice
    in a row of the sparse matrix: still the row exactly)."""
    gen = torch.Generator().manual_seed(9)
    v = torch.randn(40, 4, 6, generator=gen, dtype=torch.float64).to(dtype)
    placed = _placement(gen, 40, 30)  # (more old rows than PRODUCT_KNOTS: not the mixing product)
    index = torch.cat([placed.pos_old[::3], placed.pos_new[::2]])
    whole = placed.interpolated(v)
    assert torch.equal(placed.rows_of(v, index), whole[index])
    assert torch.equal(whole[placed.pos_old], v)


def test_a_max_pool_of_one_line_computed_twice_makes_no_knot_in_either():
    """Each window holds a ReLU unit h and 3h - 2h, the same line in rounding noise: a tie that
    stays a tie (DESIGN.md). The walk, which used to read the noise of their values and slopes as
    a winner change somewhere along the segment, takes a candidate within the rounding floor of
    the leader as tied with it, as the layerwise pass does; both see the ReLU's knots only."""
    net = nf.same_line_pool(3)
    a, b = nf.segments(net, 6, 7, scale=4.0)
    relu_knots = 0
    for s, d in enumerate(trace_segments(net, a, b)):
        assert_same_trace(d, walk_segment(net, a[s], b[s]))
        assert d.knots_per_layer["MaxPool_pair"] == 0
        relu_knots += d.knots
    assert relu_knots > 6


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 1e300])
def test_segment_ends_that_are_not_finite_are_refused(bad):
    """A NaN end compares false with everything, so its segment would read as one region, and 1e300
    in a float32 network overflows to inf the same way: both are refused."""
    from regionaudit.errors import BadData

    net = nf.make("mlp", 0).to(dtype=torch.float32)
    a = torch.randn(2, *net.input_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    b = -a
    assert all(tr.regions > 1 for tr in trace_segments(net, a, b))
    a[1, 0] = bad
    with pytest.raises(BadData, match="^segment starts hold 1 NaN or infinite value \\(in float32\\)$"):
        trace_segments(net, a, b)
    with pytest.raises(BadData, match="^segment ends hold 1 NaN"):
        trace_segments(net, b, a.numpy())


def _placement(gen: torch.Generator, n_old: int, n_new: int) -> knots.Placement:
    j = torch.sort(torch.randint(0, n_old - 1, (n_new,), generator=gen)).values
    return knots.Placement.of(j, torch.rand(n_new, generator=gen, dtype=torch.float64), n_old)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("n_old, first, second", [(3, 20, 60), (40, 4, 3), (40, 30, 200), (300, 5, 400)])
def test_a_deferred_value_gets_the_rows_of_two_insertions_in_one(dtype, n_old, first, second):
    """A value no node read between two insertions keeps its old rows; read after both, it has
    the rows the two interpolations one after the other give (to rounding), its old rows unchanged,
    whichever way the composed placement is applied (product, gather, or lerp and merge)."""
    gen = torch.Generator().manual_seed(n_old + first + second)
    v = torch.randn(n_old, 2, 3, generator=gen, dtype=torch.float64).to(dtype)
    p1, p2 = _placement(gen, n_old, first), _placement(gen, n_old + first, second)
    step = p1.merge(v, p1.interpolate(v))
    want = p2.merge(step, p2.interpolate(step))
    live = knots.Live({7: v})
    live.insert(p1)
    live.insert(p2)
    assert live.held()[7] is v  # nothing made yet
    got = live[7]
    assert live.held()[7] is got and 7 in live and list(live) == [7]
    assert got.shape == want.shape == (n_old + first + second, 2, 3)
    composed = p1.then(p2)
    assert torch.equal(got[composed.pos_old], v)
    eps = torch.finfo(dtype).eps
    assert torch.allclose(got, want, rtol=8 * eps, atol=8 * eps * float(v.abs().max()))


def test_a_value_read_between_insertions_is_placed_by_the_later_one_alone():
    """Values deferred at different insertions each follow their own placements."""
    gen = torch.Generator().manual_seed(3)
    v = torch.randn(10, 4, generator=gen, dtype=torch.float64)
    p1, p2 = _placement(gen, 10, 6), _placement(gen, 16, 5)
    live = knots.Live({1: v})
    live.insert(p1)
    w = live[1] * 2  # read: made at the 16 knots, and a new value computed there
    live[2] = w
    live.insert(p2)
    assert torch.equal(live.held()[2], w)
    both = p2.merge(w, p2.interpolate(w))
    assert torch.allclose(live[2], both, rtol=1e-15, atol=1e-15)
    assert torch.allclose(live[1] * 2, both, rtol=1e-14, atol=1e-14)
    del live[1]
    assert list(live) == [2] and 1 not in live


def test_the_product_with_few_old_rows_is_the_same_in_blocks(monkeypatch):
    """The interpolation by a product with the old rows writes its output a block of rows at a
    time: the rows are those of the whole product, whatever the block."""
    gen = torch.Generator().manual_seed(11)
    v = torch.randn(3, 4, 10, generator=gen, dtype=torch.float64)
    placed = _placement(gen, 3, 50)
    whole = placed.apply(v)
    monkeypatch.setattr(knots, "MIX_CHUNK_BYTES", 7 * 40 * 8)  # 7 rows a block, the last shorter
    blocks = knots.Placement.of(placed.j, placed.s, 3).apply(v)
    assert whole.shape == blocks.shape == (53, 4, 10)
    assert torch.allclose(blocks, whole, rtol=1e-15, atol=1e-15)
    assert torch.allclose(whole, placed.merge(v, placed.interpolate(v)), rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("n_old, first, second", [(3, 20, 60), (40, 30, 10)])
def test_a_value_deferred_through_a_relu_is_read_in_part_as_it_would_be_whole(n_old, first, second):
    """A ReLU's output waiting on its deferred input gives the rows and the entries asked for, as
    reading it whole then selecting them does (to rounding; by the product with few old rows, by a
    weighted gather with many), and makes nothing else until it is read whole."""
    gen = torch.Generator().manual_seed(n_old + first)
    v = torch.randn(n_old, 2, 3, generator=gen, dtype=torch.float64)
    p1, p2 = _placement(gen, n_old, first), _placement(gen, n_old + first, second)
    live = knots.Live({4: v, 5: v + 1})
    live.insert(p1)
    live.insert(p2)
    assert live.defer_through(6, 4, torch.relu_) and 4 not in live and 6 in live
    assert not live.defer_through(7, 6, torch.relu_)  # (once only: a function is not composed)
    part = live.part(6)
    n = n_old + first + second
    assert part.shape == (n, 2, 3) and live.held()[6] is v
    rows = torch.randperm(n, generator=gen)[:9]
    cols = torch.randint(0, 6, (9,), generator=gen)
    got_rows, got_entries = part.rows(rows), part.entries(rows, cols)
    whole = live[6]
    assert bool((whole >= 0).all()) and bool((whole == 0).any())
    assert torch.allclose(got_rows, whole[rows], rtol=1e-15, atol=1e-15)
    assert torch.allclose(got_entries, whole.reshape(n, 6)[rows, cols], rtol=1e-15, atol=1e-15)
    read = live.part(5)  # a value read whole is read in part from its rows
    assert torch.equal(live.part(5).rows(rows), live[5][rows]) and read.placed is not None
    assert torch.equal(live.part(5).entries(rows, cols), live[5].reshape(n, 6)[rows, cols])


def test_a_reshape_waits_with_its_deferred_input_and_its_old_rows_are_held():
    """A reshape of a deferred value (through a ReLU) waits in its place: read whole it is the
    input read whole, reshaped; in part at the insertion's old knots, its rows held (the ReLU
    applied to a copy), equal to the rows read by index; a value deferred at an earlier
    insertion, or a value read, is not held there."""
    gen = torch.Generator().manual_seed(5)
    v = torch.randn(12, 2, 3, generator=gen, dtype=torch.float64)
    p1 = _placement(gen, 12, 30)
    live = knots.Live({4: v})
    live.insert(p1)
    assert live.defer_through(6, 4, torch.relu_)
    want = live.part(6).rows(torch.arange(42))
    assert live.defer_reshaped(7, 6, (6,)) and 6 not in live and 7 in live
    assert not live.defer_reshaped(8, 9, (6,))  # (nothing deferred: the caller computes it)
    part = live.part(7)
    assert part.shape == (42, 6) and part.held_at(p1)
    old = part.at_old_knots(p1)
    assert torch.equal(old, v.reshape(12, 6).relu()) and bool((v < 0).any())  # (v itself unchanged)
    assert torch.equal(old, part.rows(p1.pos_old))
    assert torch.allclose(live[7], want.reshape(42, 6), rtol=1e-15, atol=1e-15)
    p2 = _placement(gen, 42, 5)
    live[9] = torch.randn(42, 6, generator=gen, dtype=torch.float64)
    live.insert(p2)
    later = live.part(9)
    assert later.held_at(p2) and not later.held_at(p1)
    assert not knots.Part.of(v).held_at(p1)
    spared = part.at_old_knots(p1, spare=True)  # read nowhere after: the ReLU runs on them in place
    assert torch.equal(spared, old) and spared.data_ptr() == v.data_ptr() and bool((v >= 0).all())


@pytest.mark.parametrize("kernel,stride,pads", [((2, 2), (2, 2), (0, 0, 0, 0)), ((3, 3), (2, 2), (1, 1, 1, 1))])
@pytest.mark.parametrize("n_old, first", [(3, 20), (40, 30)])
def test_a_max_pool_of_a_deferred_relu_is_read_in_part_as_it_would_be_whole(kernel, stride, pads, n_old, first):
    """A max pool of a ReLU's output that waits on its deferred input waits too: its rows, its
    entries (each window's maximum from its cells alone, padding never one), a strided subset of
    its cells and its reshape read as reading it whole then selecting them does (to rounding),
    and read whole it is the pool of the ReLU of the input read whole."""
    gen = torch.Generator().manual_seed(n_old + first + kernel[0])
    v = torch.randn(n_old, 1, 2, 6, 7, generator=gen, dtype=torch.float64)
    before = v.clone()
    out = (6 + pads[0] + pads[2] - kernel[0]) // stride[0] + 1, (7 + pads[1] + pads[3] - kernel[1]) // stride[1] + 1
    pool = ir.MaxPool("pool", (6,), (1, 2, *out), kernel=kernel, strides=stride, pads=pads, dilations=(1, 1))
    placed = _placement(gen, n_old, first)
    n = n_old + first
    made = []
    for reshaped in (False, True):
        live = knots.Live({4: v})
        live.insert(placed)
        assert live.defer_through(6, 4, torch.relu_) and live.defer_pooled(7, 6, pool) and 6 not in live
        assert not live.defer_pooled(8, 9, pool)  # (nothing deferred: the caller computes it)
        if reshaped:
            assert live.defer_reshaped(8, 7, (2 * out[0] * out[1],)) and live.deferred(8)
        q = 8 if reshaped else 7
        part = live.part(q)
        assert part.shape == ((n, 2 * out[0] * out[1]) if reshaped else (n, 1, 2, *out))
        rows = torch.randperm(n, generator=gen)[:9]
        cols = torch.randint(0, 2 * out[0] * out[1], (9,), generator=gen)
        got_rows, got_entries, got_old = part.rows(rows), part.entries(rows, cols), part.at_old_knots(placed)
        cells = None if reshaped else part.cells((slice(None, None, 2), slice(None, None, 2)))
        whole = live[q]
        assert torch.equal(v, before)  # (the rows held are read, never written)
        assert torch.allclose(got_rows, whole[rows], rtol=1e-15, atol=1e-15)
        assert torch.allclose(got_entries, whole.reshape(n, -1)[rows, cols], rtol=1e-15, atol=1e-15)
        assert torch.allclose(got_old, whole[placed.pos_old], rtol=1e-15, atol=1e-15)
        if cells is not None:
            assert torch.allclose(cells, whole[..., ::2, ::2], rtol=1e-15, atol=1e-15)
        made.append(whole.reshape(n, -1))
    plain = knots.Live({4: v})
    plain.insert(placed)
    want = pool.forward([plain[4].relu()]).reshape(n, -1)
    assert bool((want == 0).any()) and bool((want > 0).any())
    assert torch.equal(made[0], want) and torch.equal(made[1], want)


@pytest.mark.parametrize("n_old, first", [(3, 20), (40, 30)])
def test_a_deferred_value_read_at_a_strided_subset_of_cells_is_those_cells_of_the_whole(n_old, first):
    """A 1x1 convolution at stride 2 reads one cell in four: a value waiting through a ReLU gives
    those cells alone, as reading it whole then slicing does (to rounding)."""
    gen = torch.Generator().manual_seed(n_old)
    v = torch.randn(n_old, 1, 2, 5, 6, generator=gen, dtype=torch.float64)
    live = knots.Live({4: v})
    live.insert(_placement(gen, n_old, first))
    assert live.defer_through(6, 4, torch.relu_) and live.deferred(6) and not live.deferred(4)
    index = (slice(None, None, 2), slice(None, None, 3))
    cells = live.part(6).cells(index)
    whole = live[6]
    assert cells.shape == (n_old + first, 1, 2, 3, 2) and bool((cells == 0).any())
    assert torch.allclose(cells, whole[..., ::2, ::3], rtol=1e-15, atol=1e-15)
    assert torch.equal(knots.Part.of(whole).cells(index), whole[..., ::2, ::3])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("n_old, first, second", [(40, 30, 0), (300, 5, 0), (40, 200, 0), (12, 30, 40), (3, 20, 0)])
def test_a_waiting_value_added_in_place_is_the_sum_with_it_made_whole(dtype, n_old, first, second):
    """A value waiting through one or two insertions, added into another where its rows lie
    (by the weighted gather or the interpolation, as `apply` would make them), gives the sum
    with it made whole, to the bit; where `apply` would multiply by the mixing weights (few old
    rows, mostly new ones) nothing is added and the caller adds it whole."""
    gen = torch.Generator().manual_seed(n_old + first + second)
    v = torch.randn(n_old, 2, 3, generator=gen, dtype=torch.float64).to(dtype)
    before = v.clone()
    live = knots.Live({4: v})
    live.insert(_placement(gen, n_old, first))
    if second:
        live.insert(_placement(gen, n_old + first, second))
    n = n_old + first + second
    other = torch.randn(n, 2, 3, generator=gen, dtype=torch.float64).to(dtype)
    out = other.clone()
    added = live.add_into(out, 4)
    assert live.deferred(4) and torch.equal(v, before)  # (still waiting, its rows unchanged)
    mixed = first + second > 2 * n_old and n_old <= knots.PRODUCT_KNOTS
    assert added != mixed
    if not added:
        assert torch.equal(out, other)
        return
    assert torch.equal(out, other + live[4])


def test_a_waiting_value_is_added_in_place_only_as_it_is():
    """No in-place add for a value waiting with a function to apply (a ReLU's output), of
    another shape or type, or read already."""
    gen = torch.Generator().manual_seed(3)
    v = torch.randn(40, 6, generator=gen, dtype=torch.float64)
    live = knots.Live({4: v, 5: v.clone()})
    live.insert(_placement(gen, 40, 30))
    assert live.defer_through(6, 5, torch.relu_)
    out = torch.zeros(70, 6, dtype=torch.float64)
    assert not live.add_into(out, 6)
    assert not live.add_into(torch.zeros(70, 3, 2, dtype=torch.float64), 4)
    assert not live.add_into(torch.zeros(70, 6, dtype=torch.float32), 4)
    live[4]  # (read: made whole)
    assert not live.add_into(out, 4) and not bool(out.any())


def _shortcut_net(seed: int, stride: int) -> ir.Network:
    """A residual block that halves the image, its shortcut a 1x1 convolution at stride 2 of the
    first ReLU's output (as in ResNets), the block's convolution a 3x3 one at the same stride."""
    g = nf.Builder((2, 10, 10), seed)
    x = g.relu(g.conv(0, 8, 3, pad=1))
    y = g.conv(x, 8, 3, stride=stride, pad=1)  # (refilled: it reads x in part, and x waits)
    shortcut = g.conv(x, 8, 1, stride=stride)  # (run after y's convolution, before its ReLU)
    y = g.conv(g.relu(y), 8, 3, pad=1)
    return g.network(g.dense(g.flatten(g.relu(g.sum(y, shortcut))), 3))


def test_a_strided_shortcut_reads_its_cells_alone_and_the_trace_is_the_walks(monkeypatch):
    """The shortcut's input (the first ReLU's output, waiting on its insertion) is made at the
    cells the shortcut reads alone, and the trace is the walk's; so is a shortcut at stride 1,
    which reads every cell. The shortcut's output, waiting across the block's ReLU, is added into
    the block's output where its rows lie."""
    calls, sums = [], []
    on_sublattice = ir.Conv.forward_on_sublattice
    add_into = knots.Live.add_into

    def spy(node, cells):
        calls.append(tuple(cells.shape[-2:]))
        return on_sublattice(node, cells)

    def spy_add(live, out, q):
        sums.append(add_into(live, out, q))
        return sums[-1]

    monkeypatch.setattr(ir.Conv, "forward_on_sublattice", spy)
    monkeypatch.setattr(knots.Live, "add_into", spy_add)
    for stride in (2, 1):
        net = _shortcut_net(3, stride)
        shortcut = [n for n in net.nodes if isinstance(n, ir.Conv) and n.weight.shape[-1] == 1][0]
        assert (shortcut.sublattice() is not None) == (stride == 2)
        a, b = nf.segments(net, 3, 11)
        calls.clear()
        for s, d in enumerate(trace_segments(net, a, b)):
            w = walk_segment(net, a[s], b[s])
            assert_same_trace(d, w)
            assert d.regions > 20
            assert float((d.outputs - w.outputs).abs().max()) < 1e-9
        assert calls == ([(5, 5)] if stride == 2 else [])
        assert sums and all(sums)


@pytest.mark.parametrize("scale", [1e-170, 1e-300])
def test_tiny_segment_through_boundaries_of_a_bias_free_layer(scale):
    """Units whose values at both knots are near 1e-170 still cross: their product underflows."""
    net = nf.mlp(5, in_dim=3, widths=(6,), n_out=2)
    net.nodes[1].bias.zero_()  # every boundary of the ReLU layer runs through the origin
    u = torch.tensor([[1.0, 0.4, -0.3]], dtype=torch.float64)
    v = torch.tensor([[0.2, -1.0, 0.5]], dtype=torch.float64)
    a, b = (-u + 0.3 * v) * scale, (u + 0.1 * v) * scale
    tiny = trace_segments(net, a, b)[0]
    unit = trace_segments(net, a / scale, b / scale)[0]
    assert unit.regions > 3
    assert tiny.regions == unit.regions == walk_segment(net, a[0], b[0]).regions
    assert float((tiny.t - unit.t).abs().max()) < 1e-12
