"""The density's tail (analysis/tail.py): after a wide last kink node most new knots get their
outputs from the crossings instead of a pass over the node's units. Region counts and knots must
not change, and the outputs must equal a plain forward pass to rounding, also where a tight
memory budget or --max-knots cuts the pass."""

from __future__ import annotations

import pytest
import torch

import netfactory as nf
import plainpath
from regionaudit.analysis import density, tail
from regionaudit.analysis._common import needed_nodes
from regionaudit.analysis.walk import walk_segment


def _tail(net):
    order = needed_nodes(net)
    return tail.affine_tail(net, order, density.bytes_per_knot(net, order), 1 << 30)


def _rel_to_forward(net, a, b, tr) -> float:
    tt = tr.t.to(net.dtype)[:, None]
    direct = plainpath.forward(net, (1 - tt) * a.reshape(1, -1) + tt * b.reshape(1, -1))
    return float((tr.outputs - direct).abs().max() / direct.abs().max())


@pytest.mark.parametrize("kind", nf.TAIL_KINDS)
@pytest.mark.parametrize("pair_bytes", [tail.PAIR_BYTES, 1], ids=["default", "few-pairs-at-a-time"])
def test_most_knots_take_their_outputs_from_the_crossings(kind, pair_bytes, monkeypatch):
    monkeypatch.setattr(tail, "PAIR_BYTES", pair_bytes)
    net = nf.make(kind, 5)
    assert _tail(net) is not None
    rows = []
    fill = tail.TailFill.outputs
    monkeypatch.setattr(tail.TailFill, "outputs", lambda self, out: rows.append((int(self.exact.sum()), len(self.exact))) or fill(self, out))
    a, b = nf.segments(net, 2, 6)
    for s, tr in enumerate(density.trace_segments(net, a, b)):
        assert tr.regions == walk_segment(net, a[s], b[s]).regions
        assert _rel_to_forward(net, a[s], b[s], tr) < 1e-12
    exact, total = map(sum, zip(*rows))
    assert exact < total / 2  # the formula, not the tail's forward pass, gave most outputs


def test_tail_matrix_is_the_tails_jacobian():
    net = nf.make("tail_avg", 2)
    t = _tail(net)
    m = tail.tail_matrix(net, t)
    h = torch.randn(4, *net.nodes[t.kink].shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def run(x):
        values = {t.kink: x}
        for i in t.nodes:
            values[i] = net.nodes[i].forward([values[j] for j in net.nodes[i].inputs])
        return values[net.output]

    assert m.shape == (net.nodes[t.kink].units, net.n_outputs)
    assert torch.allclose(h.reshape(4, -1) @ m + run(torch.zeros_like(h[:1])), run(h), rtol=0, atol=1e-13)


@pytest.mark.parametrize("kind", nf.TAIL_KINDS)
@pytest.mark.parametrize("knots", [8, 16])
def test_tight_memory_and_max_knots_keep_the_knots(kind, knots, monkeypatch):
    """A budget of a few knots (anchors spread out, passes split) and --max-knots (crossings
    past the last kept knot still bend the outputs before the next old knot)."""
    net = nf.make(kind, 7)
    a, b = nf.segments(net, 3, 8)
    per_knot = density.bytes_per_knot(net)
    tight = density.trace_segments(net, a, b, max_memory=max(knots * per_knot, density.min_memory(net)))
    cut = density.trace_segments(net, a, b, max_knots=25)
    monkeypatch.setattr(density, "affine_tail", lambda *args, **kwargs: None)
    plain = density.trace_segments(net, a, b)
    plain_cut = density.trace_segments(net, a, b, max_knots=25)
    for s in range(3):
        for got, ref in ((tight[s], plain[s]), (cut[s], plain_cut[s])):
            assert got.t.shape == ref.t.shape and got.truncated == ref.truncated
            assert float((got.t - ref.t).abs().max()) < 1e-12
            assert got.knots_per_layer == ref.knots_per_layer
            assert _rel_to_forward(net, a[s], b[s], got) < 1e-12
        assert cut[s].truncated


@pytest.mark.parametrize("kind", ["tail_max", "tail_max_leaky"])
@pytest.mark.parametrize("flat", [False, True], ids=["random", "constant-images"])
def test_a_max_pool_last_finds_its_knots_with_the_relus(kind, flat, monkeypatch):
    """The pool's winner changes come from the ReLU's input (no crossing search at the pool),
    the same knots from the same nodes as ReLU then max pool one after the other; with constant
    images every window holds tied lines (the same value computed at several cells)."""
    net = nf.make(kind, 4)
    assert _tail(net).pool is not None
    a, b = nf.segments(net, 3, 9)
    if flat:
        a, b = nf.constant_images(a), nf.constant_images(b)
    searched = []
    search = density.maxpool_crossings
    monkeypatch.setattr(density, "maxpool_crossings", lambda *args, **kwargs: searched.append(1) or search(*args, **kwargs))
    got = density.trace_segments(net, a, b)
    assert not searched
    monkeypatch.setattr(density, "affine_tail", lambda *args, **kwargs: None)
    monkeypatch.setattr(density, "pooled_relus", lambda *args, **kwargs: {})  # the pool searched on its own
    ref = density.trace_segments(net, a, b)
    assert searched
    for s in range(3):
        assert got[s].regions == walk_segment(net, a[s], b[s]).regions == ref[s].regions
        assert got[s].knots_per_layer == ref[s].knots_per_layer
        assert float((got[s].t - ref[s].t).abs().max()) < 1e-12
        assert _rel_to_forward(net, a[s], b[s], got[s]) < 1e-12
    pool_knots = sum(tr.knots_per_layer[net.nodes[_tail(net).pool].name] for tr in got)
    assert pool_knots > (0 if flat else 10)


@pytest.mark.parametrize("kind", ["tail_max", "tail_max_leaky"])
@pytest.mark.parametrize("flat", [False, True], ids=["random", "constant-images"])
def test_a_max_pool_last_is_made_from_the_winners_at_the_old_knots(kind, flat, monkeypatch):
    """The pool after the tail's ReLU runs at the new knots that get values alone: at the old
    ones its output is the ReLU of each window's maximum, which came with the winners, and the
    ReLU's output is never made. The outputs stay those of a plain forward pass."""
    net = nf.make(kind, 5)
    t = _tail(net)
    pool, relu = net.nodes[t.pool], net.nodes[t.kink]
    a, b = nf.segments(net, 3, 10)
    if flat:
        a, b = nf.constant_images(a), nf.constant_images(b)
    pooled, relued, exact = [], [], []
    fill = tail.TailFill.outputs
    monkeypatch.setattr(tail.TailFill, "outputs", lambda self, out: exact.append(out.shape[0]) or fill(self, out))
    forward, forward_inplace = pool.forward, relu.forward_inplace
    monkeypatch.setattr(pool, "forward", lambda xs: pooled.append(xs[0].shape[0]) or forward(xs))
    monkeypatch.setattr(relu, "forward_inplace", lambda z: relued.append(tuple(z.shape)) or forward_inplace(z))
    got = density.trace_segments(net, a, b)
    assert sum(exact) > 0 and sum(pooled) < sum(exact)
    # the ReLU ran on the pool's input at the new knots alone, and on the maxima at the old ones
    assert [r for r, *shape in relued if tuple(shape) == tuple(relu.shape)] == pooled
    assert sum(r for r, *shape in relued if tuple(shape) == tuple(pool.shape)) == sum(exact) - sum(pooled)
    for s in range(3):
        assert got[s].regions == walk_segment(net, a[s], b[s]).regions
        assert _rel_to_forward(net, a[s], b[s], got[s]) < 1e-12


@pytest.mark.parametrize("kind", ["mlp", "cnn_max", "resnet", "mlp_max"])
def test_no_tail_where_it_does_not_pay_or_does_not_hold(kind):
    """Narrow last layers (a pass over them costs what the formula does), a max pool last, and
    nets whose layers after the last kink node read something from before it."""
    assert _tail(nf.make(kind, 0)) is None


def test_no_tail_when_a_skip_reaches_past_the_last_kink():
    g = nf.Builder((4,), 0)
    x = g.dense(0, 200)
    y = g.dense(g.relu(x), 200)
    net = g.network(g.dense(g.sum(x, y), 2))  # the output reads x, from before the ReLU
    assert _tail(net) is None
    g = nf.Builder((4,), 0)
    net = g.network(g.dense(g.relu(g.dense(0, 200)), 2))
    assert _tail(net) is not None


def test_float32_tail_keeps_the_knots(monkeypatch):
    net = nf.make("tail_avg", 3).to(torch.float32)
    a, b = nf.segments(net, 2, 4)
    got = density.trace_segments(net, a, b)
    monkeypatch.setattr(density, "affine_tail", lambda *args, **kwargs: None)
    ref = density.trace_segments(net, a, b)
    for s in range(2):
        assert got[s].outputs.dtype == torch.float32 and torch.equal(got[s].t, ref[s].t)
        tt = got[s].t.to(torch.float32)[:, None]
        direct = net.forward((1 - tt) * a[s].reshape(1, -1).float() + tt * b[s].reshape(1, -1).float())
        assert float((got[s].outputs - direct).abs().max() / direct.abs().max()) < 1e-5
