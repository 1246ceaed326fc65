"""The layer after a kink node at its new knots (analysis/refill.py): the interpolation of its
outputs at the old knots plus the kinked units' columns. The columns must be the layer's, and
traces must not change."""

from __future__ import annotations

import pytest
import torch

import netfactory as nf
from regionaudit import ir
from regionaudit.analysis import density, knots, refill
from regionaudit.analysis.walk import walk_segment


@pytest.mark.parametrize(
    "shape, c_out, k, stride, pads, dil, groups",
    [
        ((3, 7, 6), 4, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),
        ((4, 9, 8), 6, 3, (2, 1), (0, 2, 1, 0), (1, 2), 2),  # asymmetric pads, dilation, groups
        ((2, 5, 5), 3, 2, (2, 2), (0, 0, 1, 1), (1, 1), 1),
    ],
)
@pytest.mark.parametrize("leads", [1, 2])
def test_convolution_columns_are_the_convolutions(shape, c_out, k, stride, pads, dil, groups, leads):
    """Scattering sparse inputs through `_ConvFan`, or adding them by the product with its dense
    columns, equals the convolution (no bias) of them, per lead."""
    gen = torch.Generator().manual_seed(0)
    c_in, h, w = shape
    weight = torch.randn(c_out, c_in // groups, k, k, generator=gen, dtype=torch.float64)
    oh = (h + pads[0] + pads[2] - dil[0] * (k - 1) - 1) // stride[0] + 1
    ow = (w + pads[1] + pads[3] - dil[1] * (k - 1) - 1) // stride[1] + 1
    node = ir.Conv("c", (0,), (leads, c_out, oh, ow), weight=weight, bias=torch.ones(c_out, dtype=torch.float64),
                   strides=stride, pads=pads, dilations=dil, groups=groups)
    rows, units = 5, leads * c_in * h * w
    dense = torch.zeros(rows, leads, *shape, dtype=torch.float64)
    flat = dense.reshape(rows, -1)
    row = torch.randint(0, rows, (40,), generator=gen).sort().values  # (ascending, as refill's)
    u = torch.randint(0, units, (40,), generator=gen)
    e = torch.randn(40, generator=gen, dtype=torch.float64)
    flat.index_put_((row, u), e, accumulate=True)
    want = node.linear([dense])
    fan = refill._ConvFan(node, tuple(dense.shape[1:]))
    got = torch.zeros(rows, leads, c_out, oh, ow, dtype=torch.float64)
    fan.add(got, row, u, e)
    assert torch.allclose(got, want, rtol=0, atol=1e-12)
    columns = fan.dense_columns()
    assert columns.shape == (c_in * h * w, c_out * oh * ow)
    # in one product, in products of 7 pairs (each over the rows they reach), pair by pair
    for pair_bytes in (refill.PAIR_BYTES, 7 * refill.SPARSE_PAIR_BYTES, 1):
        got = torch.zeros(rows, leads, c_out, oh, ow, dtype=torch.float64)
        refill.add_by_product(got, row, u, e, columns, pair_bytes)
        assert torch.allclose(got, want, rtol=0, atol=1e-12)


def test_dense_columns_are_the_products():
    gen = torch.Generator().manual_seed(1)
    weight = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    node = ir.MatMul("m", (0,), (3, 4), weight=weight, bias=None)
    dense = torch.zeros(5, 3, 6, dtype=torch.float64)  # a prefix axis: 3 rows of 6 per knot
    row = torch.randint(0, 5, (30,), generator=gen).sort().values
    u = torch.randint(0, 18, (30,), generator=gen)
    e = torch.randn(30, generator=gen, dtype=torch.float64)
    dense.reshape(5, -1).index_put_((row, u), e, accumulate=True)
    want = node.linear([dense])
    fan = refill._DenseFan(node)
    assert fan.has_dense_columns(torch.device("cpu")) and not fan.has_dense_columns(torch.device("meta"))
    columns = fan.dense_columns()
    for add in (fan.add, lambda *args: refill.add_by_product(*args, columns, refill.PAIR_BYTES),
                lambda *args: refill.add_by_product(*args, columns, 4 * refill.SPARSE_PAIR_BYTES)):
        got = torch.zeros(5, 3, 4, dtype=torch.float64)
        add(got, row, u, e)
        assert torch.allclose(got, want, rtol=0, atol=1e-12)


def test_a_convolutions_dense_columns_are_kept_for_its_weight_where_they_pay(monkeypatch):
    """Built once per weight and input shape; not used off CPU, past DENSE_COLUMNS_BYTES, or
    where a column's scattered taps cost less than its row of outputs (a depthwise layer)."""
    g = nf.Builder((8, 8, 8), 0)
    net = g.network(g.conv(0, 16, 3, pad=1))
    node = net.nodes[1]
    fan = refill._ConvFan(node, (1, 8, 8, 8))
    cpu = torch.device("cpu")
    assert fan.has_dense_columns(cpu)
    kept = fan.dense_columns()
    assert kept.shape == (512, 1024) and fan.dense_columns() is kept
    node.weight = node.weight * 2  # a replaced weight: built again (by the next layer's fan)
    assert torch.equal(refill._ConvFan(node, (1, 8, 8, 8)).dense_columns(), 2 * kept)
    monkeypatch.setattr(refill, "PAIR_BYTES", 24 * 144 * 5)  # built 5 input units at a time
    node.weight = node.weight / 2
    assert torch.equal(refill._ConvFan(node, (1, 8, 8, 8)).dense_columns(), kept)
    monkeypatch.undo()
    assert not fan.has_dense_columns(torch.device("meta"))
    depthwise = nf.Builder((16, 8, 8), 0)
    net = depthwise.network(depthwise.conv(0, 16, 3, pad=1, groups=16))
    assert not refill._ConvFan(net.nodes[1], (1, 16, 8, 8)).has_dense_columns(cpu)
    monkeypatch.setattr(refill, "DENSE_COLUMNS_BYTES", 512 * 1024 * 8 - 1)
    assert not refill._ConvFan(node, (1, 8, 8, 8)).has_dense_columns(cpu)


def _vgg_block(seed: int, slope: float = 0.0) -> ir.Network:
    """A wide first ReLU, then a 16-channel convolution (144 multiply-adds per output) through
    a reshape-free path, then a max pool and a dense layer."""
    g = nf.Builder((3, 8, 8), seed)
    x = g.relu(g.conv(0, 16, 3, pad=1), slope)
    x = g.relu(g.conv(x, 16, 3, pad=1))
    x = g.maxpool(x, 2, 2)
    return g.network(g.dense(g.flatten(x), 3))


def _pooled_block(seed: int, slope: float = 0.0) -> ir.Network:
    """A first ReLU with its max pool (found together: `density._Pass._cross_fused`), then a
    16-channel convolution that reads the pool."""
    g = nf.Builder((3, 12, 12), seed)
    x = g.maxpool(g.relu(g.conv(0, 16, 3, pad=1), slope), 2, 2)
    x = g.relu(g.conv(x, 16, 3, pad=1))
    return g.network(g.dense(g.flatten(x), 3))


def _pooled_skip_block(seed: int) -> ir.Network:
    """`_pooled_block` whose pool is also a residual skip, read again after the convolution."""
    g = nf.Builder((3, 12, 12), seed)
    p = g.maxpool(g.relu(g.conv(0, 16, 3, pad=1)), 2, 2)
    x = g.relu(g.sum(g.conv(p, 16, 3, pad=1), p))
    return g.network(g.dense(g.flatten(x), 3))


def _depthwise_block(seed: int) -> ir.Network:
    """A wide first ReLU, then a depthwise convolution by taps (9 multiply-adds per output, each
    costing 32 of a product's: `conv.mac_cost`) and a dense layer."""
    g = nf.Builder((4, 16, 16), seed)
    x = g.relu(g.conv(0, 16, 1))
    x = g.relu(g.conv(x, 16, 3, stride=2, pad=1, groups=16))
    return g.network(g.dense(g.flatten(x), 3))


@pytest.mark.parametrize("kind", ["conv", "conv-leaky", "dense", "conv-anchored", "conv-leaky-anchored", "conv-after-pool",
                                  "conv-after-leaky-pool", "conv-after-pool-skip", "depthwise-anchored"])
@pytest.mark.parametrize("pair_bytes", [refill.PAIR_BYTES, 1], ids=["default", "one-pair-at-a-time"])
@pytest.mark.parametrize("columns", ["dense", "scattered"])
def test_traces_do_not_change(kind, pair_bytes, columns, monkeypatch):
    monkeypatch.setattr(density, "PAIR_BYTES", pair_bytes)  # (the CPU's chunk, which trace_segments passes on)
    if columns == "scattered":  # (off CPU, or a convolution's columns past DENSE_COLUMNS_BYTES)
        monkeypatch.setattr(refill, "DENSE_COLUMNS_BYTES", 0)
        monkeypatch.setattr(refill._DenseFan, "has_dense_columns", lambda *args: False)
    if kind == "dense":
        net = nf.mlp(4, widths=(300, 150))
    elif kind == "conv-after-pool-skip":
        net = _pooled_skip_block(3)
    elif "pool" in kind:
        net = _pooled_block(3, 0.2 if "leaky" in kind else 0.0)
    elif kind == "depthwise-anchored":
        net = _depthwise_block(5)
    else:
        net = _vgg_block(2, 0.2 if "leaky" in kind else 0.0)
    a, b = nf.segments(net, 3, 5)
    # tens of knots per segment, the old knots' intervals holding few kinks; or hundreds between
    # the ends, so that every 4th new knot is an anchor
    b = a + {"conv": 0.03, "conv-leaky": 0.03, "dense": 0.15}.get(kind, 0.4) * (b - a)
    used, anchored = [], []
    fill, frame = density.refill, refill._Frame.anchored

    def spy(network, i, h, kinked, *rest):
        before = len(anchored)
        out = fill(network, i, h, kinked, *rest)
        frames = "anchored" if len(anchored) > before else "old knots"
        used.append((network.nodes[kinked.node].kind, frames, out is not None))
        return out

    monkeypatch.setattr(density, "refill", spy)
    monkeypatch.setattr(refill._Frame, "anchored", staticmethod(lambda *args: anchored.append(args[2]) or frame(*args)))
    pooled, defer = [], knots.Live.defer_pooled
    monkeypatch.setattr(knots.Live, "defer_pooled", lambda self, *args: pooled.append(defer(self, *args)) or pooled[-1])
    got = density.trace_segments(net, a, b)
    done = {(node, frames) for node, frames, out in used if out}
    if "pool" in kind:  # the pool's bends, recorded with the ReLU's crossings; the pool waits for them
        # where the layer alone reads it (a skip read again after it is made whole once)
        assert {node for node, _ in done} == {"maxpool"} and (pooled == [] if "skip" in kind else pooled and all(pooled))
    elif kind == "depthwise-anchored":  # 9 x 64 per column, 16 x 8 x 8 x 9 x 32 per row: 2 step^2 <= 512 at 16, so 32
        assert ("relu", "anchored") in done and set(anchored) == {32}
    elif "anchored" in kind:
        # per row 16 x 16 x 9 x 64, twice for a narrow product; per column 144 scattered taps x 64,
        # or the product's row of 16 x 64 outputs x 4: 2 step^2 <= 294912 / 9216 at 4, / 4096 at 8
        assert ("relu", "anchored") in done and set(anchored) == {4 if columns == "scattered" else 8}
    elif kind == "dense":
        assert {node for node, _ in done} == {"relu"}
    else:  # few kinks between the old knots
        assert ("relu", "old knots") in done
    _same_as_without_refill(net, a, b, got, monkeypatch)


def test_a_dense_layer_after_a_flatten_runs_at_the_old_knots_alone(monkeypatch):
    """A dense layer that reads a ReLU's output through a flatten, at an insertion of fewer new
    knots than old: the flatten waits with the ReLU's deferred output, and refill takes the
    held rows as the exact ones. Traces as without refill, and the walk's counts."""
    g = nf.Builder((2, 8, 8), 4)
    x = g.relu(g.conv(0, 16, 3, pad=1))  # (many knots, before fewer at the second ReLU)
    x = g.relu(g.dense(g.flatten(g.relu(g.conv(x, 8, 3, pad=1))), 40))  # 512 units x 40 a knot
    net = g.network(g.dense(x, 3))
    a, b = nf.segments(net, 3, 9)
    fill, calls = density.refill, []

    def spy(network, i, h, kinked, *rest):
        out = fill(network, i, h, kinked, *rest)
        n_old = kinked.placed.pos_old.shape[0]
        calls.append((network.nodes[i].kind, kinked.placed.j.shape[0] < n_old, h.held_at(kinked.placed), out is not None))
        return out

    monkeypatch.setattr(density, "refill", spy)
    got = density.trace_segments(net, a, b)
    assert ("matmul", True, True, True) in calls  # (fewer new knots than old, the rows held)
    _same_as_without_refill(net, a, b, got, monkeypatch)


@pytest.mark.parametrize("skip", [False, True], ids=["layer-alone", "skip-too"])
def test_a_convolution_after_a_later_relu_runs_at_the_old_knots_alone(skip, monkeypatch):
    """A 32-channel convolution after a second ReLU whose insertion adds fewer knots than there
    were: on CPU it runs at the old knots alone. Where the convolution alone reads the ReLU, its
    output waits and the rows held are the exact ones; where a residual skip reads it too, it is
    made whole (`_Pass._made_for_skip`) and the old rows are taken from it. Traces as without
    refill, and the walk's counts."""
    g = nf.Builder((3, 8, 8), 6)
    x = g.relu(g.conv(0, 64, 3, pad=1))  # (many knots, before fewer at the second ReLU)
    y = g.relu(g.conv(x, 32, 3, pad=1))
    z = g.conv(y, 32, 3, pad=1)
    net = g.network(g.dense(g.flatten(g.relu(g.sum(z, y) if skip else z)), 3))
    a, b = nf.segments(net, 3, 11)
    b = a + 0.2 * (b - a)
    fill, calls = density.refill, []

    def spy(network, i, h, kinked, *rest):
        out = fill(network, i, h, kinked, *rest)
        fewer = kinked.placed.j.shape[0] < kinked.placed.pos_old.shape[0]
        calls.append((i, fewer, h.held_at(kinked.placed), out is not None))
        return out

    monkeypatch.setattr(density, "refill", spy)
    got = density.trace_segments(net, a, b)
    assert (z, True, not skip, True) in calls
    _same_as_without_refill(net, a, b, got, monkeypatch)


def _same_as_without_refill(net: ir.Network, a, b, got, monkeypatch) -> None:
    """The traces `got` are those made with refill turned off (knots to 1e-12 in t, outputs to
    1e-12 relative), and their counts the walk's."""
    monkeypatch.setattr(density, "refill", lambda *args: None)
    ref = density.trace_segments(net, a, b)
    for s in range(len(ref)):
        assert got[s].t.shape == ref[s].t.shape and float((got[s].t - ref[s].t).abs().max()) < 1e-12
        assert got[s].knots_per_layer == ref[s].knots_per_layer
        assert got[s].regions == walk_segment(net, a[s], b[s]).regions
        rel = (got[s].outputs - ref[s].outputs).abs().max() / ref[s].outputs.abs().max()
        assert float(rel) < 1e-12


def test_the_anchor_step_is_the_cheapest_power_of_two():
    """Refill's cost per new knot with an anchor every s knots is per_row / s + s x per_column;
    the step is the power of two (at least 2) where it is least, the larger one where two tie."""
    anchor_step = refill.anchor_step
    assert [anchor_step(r, c) for r, c in [(73728, 16384), (131072, 16384), (2508800, 51200), (10, 10**6)]] == [2, 4, 8, 2]
    gen = torch.Generator().manual_seed(0)
    for per_row, per_column in torch.randint(1, 10**7, (200, 2), generator=gen).tolist():
        costs = {2**a: per_row / 2**a + 2**a * per_column for a in range(1, 40)}
        best = min(costs.values())
        assert costs[anchor_step(per_row, per_column)] == best
        assert all(s <= anchor_step(per_row, per_column) for s, c in costs.items() if c == best)
