"""Boundary distance (distance.py) against brute-force checks."""

from __future__ import annotations

import math

import pytest
import torch

import netfactory as nf
import plainpath
from regionaudit import ir
from regionaudit.analysis.distance import NearestBoundary, boundary_distances, min_memory
from regionaudit.errors import TooLarge


def pattern(net: ir.Network, x: torch.Tensor) -> list[torch.Tensor]:
    """Activation pattern per probe: every ReLU-type unit's sign and every window's argmax."""
    vals = net.forward_all(x)
    out = []
    for i in net.kink_ids:
        node = net.nodes[i]
        z = vals[node.inputs[0]]
        if isinstance(node, ir.LeakyRelu):
            out.append((z > 0).reshape(x.shape[0], -1))
        else:
            out.append(node.candidates(z).argmax(-1))
    return out


def exit_radius(net: ir.Network, x: torch.Tensor, dirs: torch.Tensor, r_max: float = 50.0):
    """Along each unit direction, the distance at which the activation pattern first changes
    (regions are convex: bisection on 'same pattern as x'). inf when it never changes."""
    base = pattern(net, x.unsqueeze(0))

    def same(r):
        pts = x.unsqueeze(0) + r[:, None] * dirs
        pats = pattern(net, pts)
        ok = torch.ones(dirs.shape[0], dtype=torch.bool)
        for p, b in zip(pats, base):
            ok &= (p == b).all(dim=1)
        return ok

    lo = torch.zeros(dirs.shape[0], dtype=torch.float64)
    hi = torch.full((dirs.shape[0],), r_max, dtype=torch.float64)
    never = same(hi)
    for _ in range(46):
        mid = (lo + hi) / 2
        ok = same(mid)
        lo = torch.where(ok, mid, lo)
        hi = torch.where(ok, hi, mid)
    return torch.where(never, math.inf, hi)


@pytest.mark.parametrize("kind", nf.KINDS + nf.TAIL_KINDS)
def test_distance_equals_autograd_formula(kind):
    net = nf.make(kind, 3)
    _agrees_with_plainpath(net, torch.randn(3, *net.input_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))


def _agrees_with_plainpath(net: ir.Network, pts: torch.Tensor) -> None:
    """Each point's distance, node and unit are the autograd formula's (plainpath.py)."""
    got = boundary_distances(net, pts)
    for k in range(pts.shape[0]):
        dist, node, unit = plainpath.distance(net, pts[k])
        assert got[k].distance == pytest.approx(dist, rel=1e-12, abs=1e-15)
        assert (got[k].node, got[k].unit) == (node, unit)


@pytest.mark.parametrize("skip", [False, True], ids=["conv-alone", "conv-and-skip"])
def test_distance_of_an_image_read_by_a_placed_conv_and_by_a_skip(skip):
    """The identity rows that stand for the input go unwritten only where every reader places
    them (a convolution): a residual sum reading the input too must get their values."""
    g = nf.Builder((2, 5, 5), 4)
    x = g.relu(g.conv(0, 2, 3, pad=1))
    if skip:
        x = g.relu(g.sum(0, x, coeffs=(0.5, 1.0)))
    net = g.network(g.dense(g.flatten(x), 3))
    _agrees_with_plainpath(net, torch.randn(3, 2, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(5)))


@pytest.mark.parametrize(
    "net",
    [
        nf.mlp(0, in_dim=2, widths=(6, 5)),
        nf.mlp(1, in_dim=2, widths=(5, 5), slope="prelu"),
        nf.resnet(2, in_dim=2, width=4, blocks=1),
        nf.concat_net(3, in_dim=2),
        nf.mlp_max(4, in_dim=2),
    ],
    ids=["mlp", "prelu", "resnet", "concat", "maxpool"],
)
def test_distance_geometric_brute_force(net):
    """2-D inputs: the distance is the smallest exit radius over densely sampled directions, and
    crossing the nearest unit's hyperplane changes exactly that unit."""
    gen = torch.Generator().manual_seed(7)
    pts = torch.randn(3, 2, dtype=torch.float64, generator=gen)
    got = boundary_distances(net, pts)
    n_dir = 2000
    ang = torch.arange(n_dir, dtype=torch.float64) * (2 * math.pi / n_dir)
    dirs = torch.stack([ang.cos(), ang.sin()], dim=1)
    for k in range(3):
        d = got[k].distance
        radii = exit_radius(net, pts[k], dirs)
        r_min = float(radii.min())
        # sampled directions never beat the exact distance and approach it (1 - cos(π/n) ~ 1.2e-6)
        assert r_min >= d * (1 - 1e-9)
        assert r_min <= d * (1 + 3e-6)
        # step just past the boundary along the best sampled direction: the reported unit flips
        best = dirs[int(radii.argmin())]
        before = pattern(net, (pts[k] + d * (1 - 1e-6) * best).unsqueeze(0))
        after = pattern(net, (pts[k] + r_min * (1 + 1e-6) * best).unsqueeze(0))
        base = pattern(net, pts[k].unsqueeze(0))
        assert all(torch.equal(p, b) for p, b in zip(before, base))
        names = [net.nodes[i].name for i in net.kink_ids]
        j = names.index(got[k].node)
        assert bool((after[j][0] != base[j][0])[got[k].unit])


def test_chunking_changes_nothing_beyond_rounding():
    net = nf.make("cnn_max", 5)
    pts = torch.randn(9, *net.input_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ref = boundary_distances(net, pts)
    seen = []
    small = boundary_distances(net, pts, max_memory=60_000, progress=seen.append)
    assert sum(seen) == 9 and len(seen) > 1
    for r, s in zip(ref, small):
        assert s.distance == pytest.approx(r.distance, rel=1e-12)
        assert (s.node, s.unit) == (r.node, r.unit)
    # one point alone gives the same answer as in a batch
    one = boundary_distances(net, pts[4:5])[0]
    assert one.distance == pytest.approx(ref[4].distance, rel=1e-12) and one.node == ref[4].node


def test_flat_rows_and_float32():
    net = nf.make("cnn_avg", 1)
    pts = torch.randn(3, *net.input_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    a = boundary_distances(net, pts)
    b = boundary_distances(net, pts.reshape(3, -1))
    assert [x.distance for x in a] == [x.distance for x in b]
    net32 = nf.make("cnn_avg", 1).to(dtype=torch.float32)
    c = boundary_distances(net32, pts.float())
    for x, y in zip(a, c):
        assert y.distance == pytest.approx(x.distance, rel=1e-3)
        assert isinstance(y.distance, float)


def test_no_units_with_gradient_gives_none():
    """A ReLU fed only by constants (zero weights): no unit has a gradient; distance is None."""
    f64 = torch.float64
    nodes = [
        ir.Input("x", (), (3,)),
        ir.MatMul("fc", (0,), (2,), weight=torch.zeros(3, 2, dtype=f64), bias=torch.tensor([1.0, -1.0], dtype=f64)),
        ir.LeakyRelu("relu", (1,), (2,), slope=torch.tensor(0.0, dtype=f64)),
    ]
    net = ir.Network(nodes=nodes, input_shape=(3,), graph_input_shape=(3,), output=2)
    out = boundary_distances(net, torch.zeros(2, 3, dtype=f64))
    assert out == [NearestBoundary(None, None, None)] * 2


def test_a_window_holding_one_line_twice_bounds_nothing():
    """Windows (h_i, 3 h_i - 2 h_i): their margins are rounding noise over noisy gradients,
    under the gradients' rounding floor, which used to give distances of 0 there. The distances
    are the ReLU layer's alone, as on the net without the pool."""
    net = nf.same_line_pool(3)
    a, _ = nf.segments(net, 20, 7, scale=4.0)
    got = boundary_distances(net, a)
    plain = boundary_distances(nf.same_line_pool(3, twice=False), a)
    assert all(x.node.startswith("Relu") for x in got)
    assert [x.unit for x in got] == [x.unit for x in plain]
    for x, y in zip(got, plain):
        assert x.distance == pytest.approx(y.distance, rel=1e-12) and x.distance > 1e-3


def test_hand_example():
    """relu([x0 - 1, 3 x1 + 4 x0]) at (0.5, 0.5): distances 0.5 / 1 and 3.5 / 5 -> 0.5, unit 0."""
    f64 = torch.float64
    nodes = [
        ir.Input("x", (), (2,)),
        ir.MatMul("fc", (0,), (2,), weight=torch.tensor([[1.0, 4.0], [0.0, 3.0]], dtype=f64),
                  bias=torch.tensor([-1.0, 0.0], dtype=f64)),
        ir.LeakyRelu("relu", (1,), (2,), slope=torch.tensor(0.0, dtype=f64)),
    ]
    net = ir.Network(nodes=nodes, input_shape=(2,), graph_input_shape=(2,), output=2)
    out = boundary_distances(net, torch.tensor([[0.5, 0.5], [0.9, -1.0]], dtype=f64))
    assert out[0] == NearestBoundary(0.5, "relu", 0)
    # second point: |0.9 - 1| / 1 = 0.1 vs |3.6 - 3| / 5 = 0.12
    assert out[1].distance == pytest.approx(0.1, abs=1e-15) and out[1].unit == 0


@pytest.mark.parametrize("pad", [0, 1])
def test_large_disjoint_pool_windows_equal_autograd_formula(pad):
    """3x3 windows at stride 3 (copied in window order, not read tap by tap), padded or not."""
    g = nf.Builder((2, 7, 7), 4)
    x = g.maxpool(g.relu(g.conv(0, 3, 2, pad=1)), 3, 3, pad=pad)
    net = g.network(g.dense(g.flatten(g.relu(g.conv(x, 2, 1))), 2))
    _agrees_with_plainpath(net, torch.randn(3, *net.input_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2)))


def _prelu_pool(seed: int, shape=(2, 6, 6)) -> ir.Network:
    g = nf.Builder(shape, seed)
    x = g.maxpool(g.relu(g.conv(0, 4, 3, pad=1), "prelu"), 2, 2)
    return g.network(g.dense(g.flatten(x), 3))


@pytest.mark.parametrize(
    "net",
    [nf.make("tail_max", 1), nf.make("cnn_max", 2), _prelu_pool(3), _prelu_pool(4, (1, 12, 12))],
    ids=["disjoint-3x3", "overlapping-padded", "prelu-2x2", "receptive-fields"],  # (16 of 144 directions)
)
def test_max_pool_margins_from_shared_gram_matrices(net, monkeypatch):
    """A max pool that alone reads the first ReLU takes its margins' squared gradients from the
    windows' Gram matrices of the ReLU's shared input tangent: every margin (not only the
    nearest) as tap by tap, to rounding, and exactly 0 where both units are inactive."""
    from regionaudit.analysis import distance as D

    pool = next(i for i in net.kink_ids if isinstance(net.nodes[i], ir.MaxPool))
    seen = []
    nearest = D._nearest
    monkeypatch.setattr(D, "_nearest", lambda network, order, kinks, sq, n: seen.append(sq[pool].clone()) or nearest(network, order, kinks, sq, n))
    pts = torch.randn(5, *net.input_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    got = boundary_distances(net, pts)
    assert pool in D._pools_of_shared_relus(net, D.tangent_order(net), net.last_use(D.tangent_order(net)))
    monkeypatch.setattr(D, "_pools_of_shared_relus", lambda *args: set())
    ref = boundary_distances(net, pts)
    fast, slow = seen
    assert torch.equal(fast == 0, slow == 0) and bool((slow == 0).any()) and bool((slow > 0).any())
    assert float(((fast - slow).abs() / slow.clamp(min=1e-300)).max()) < 1e-12
    for g, r in zip(got, ref):
        assert g.distance == pytest.approx(r.distance, rel=1e-12) and (g.node, g.unit) == (r.node, r.unit)


def test_tangents_overwritten_in_place_leave_the_directions_alone():
    """A ReLU reading the input through a reshape, and a residual sum: tangents read nowhere else
    are overwritten in place, but never the input directions, which every chunk of points reuses
    (Gaussian directions here). One point at a time, the answers of one call for all."""
    g = nf.Builder((6,), 11)
    y = g.relu(g.dense(g.flatten(g.relu(g.reshape(0, (2, 3)))), 6))
    s = g.relu(g.sum(y, g.dense(y, 6)))
    net = g.network(g.dense(s, 2))
    pts = torch.randn(5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    for k, got in enumerate(boundary_distances(net, pts)):
        dist, node, unit = plainpath.distance(net, pts[k])
        assert got.distance == pytest.approx(dist, rel=1e-12) and (got.node, got.unit) == (node, unit)
    together = boundary_distances(net, pts, directions=40)
    apart = boundary_distances(net, pts, directions=40, max_memory=min_memory(net))
    for a, b in zip(together, apart):
        assert b.distance == pytest.approx(a.distance, rel=1e-12) and (b.node, b.unit) == (a.node, a.unit)
    assert [boundary_distances(net, pts[k : k + 1], directions=40)[0].distance for k in range(5)] == pytest.approx(
        [a.distance for a in together], rel=1e-12)


@pytest.mark.parametrize("copied,pool", [(False, (2, 2, 0)), (True, (2, 2, 0)), (False, (3, 1, 1))],
                         ids=["by-taps", "copied", "overlapping-padded"])
def test_squares_one_direction_at_a_time_are_the_chunked_sums(copied, pool, monkeypatch):
    """Where one direction's tangent fills the cache, each window's squared differences to its
    winner are added one direction at a time (a ReLU's squares, numpy's one-pass sums, are the
    same either way): the chunked sums to rounding, the same nearest units. Forced here on small
    layers by lowering the size it starts at; with 2x2/2 windows, and 3x3/1 ones padded by one,
    whose cells each lie in nine windows."""
    from regionaudit.analysis import distance as D

    g = nf.Builder((2, 8, 8), 6)
    x = g.maxpool(g.relu(g.conv(g.relu(g.conv(0, 4, 3, pad=1)), 4, 3, pad=1)), *pool)
    net = g.network(g.dense(g.flatten(g.relu(g.conv(x, 3, 3, pad=1))), 3))
    pool = next(i for i in net.kink_ids if isinstance(net.nodes[i], ir.MaxPool))
    monkeypatch.setattr(type(net.nodes[pool]), "copy_windows", property(lambda self: copied))
    pts = torch.randn(4, *net.input_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    seen = []
    nearest = D._nearest
    monkeypatch.setattr(D, "_nearest", lambda network, order, kinks, sq, n: seen.append({i: v.clone() for i, v in sq.items()}) or nearest(network, order, kinks, sq, n))
    chunked = boundary_distances(net, pts)
    monkeypatch.setattr(D, "SQUARES_ONE_BY_ONE", 1)
    one_by_one = boundary_distances(net, pts)
    assert len(seen) == 2  # one chunk of points in each run
    for i, slow in seen[0].items():
        assert float((seen[1][i] - slow).abs().max()) <= 1e-13 * float(slow.abs().max())
    assert not all(torch.equal(seen[1][i], v) for i, v in seen[0].items())  # another order of sums
    for a, b in zip(chunked, one_by_one):
        assert b.distance == pytest.approx(a.distance, rel=1e-12) and (b.node, b.unit) == (a.node, a.unit)
    for got, x in zip(one_by_one, pts):
        dist, node, unit = plainpath.distance(net, x)
        assert got.distance == pytest.approx(dist, rel=1e-12, abs=1e-15) and (got.node, got.unit) == (node, unit)


def _overlapping_pool_net() -> ir.Network:
    """Two padded 3x3 convolutions and ReLUs, a padded 3x3/1 max pool (each cell in nine
    windows), a third convolution and a dense layer, on 2x16x16 inputs."""
    g = nf.Builder((2, 16, 16), 6)
    x = g.maxpool(g.relu(g.conv(g.relu(g.conv(0, 8, 3, pad=1)), 16, 3, pad=1)), 3, 1, 1)
    return g.network(g.dense(g.flatten(g.relu(g.conv(x, 4, 3, pad=1))), 3))


def test_a_pool_of_overlapping_windows_copies_none_per_direction(monkeypatch):
    """A 3x3/1 max pool, padded (each cell in nine windows), sums its windows' squared differences
    to their winners a block or one direction at a time, in buffers held per point: a chunk's
    budget counts no copy of its windows per direction, so 8 MB holds a whole image row of 16
    directions (counting such a copy, 1.6 MB a direction, it held 3). The distances are those of
    the smallest chunks (the smallest budget, one point's) and of the plain reference."""
    from regionaudit.analysis import distance as D

    net = _overlapping_pool_net()
    pts = torch.randn(2, *net.input_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    sizes = []
    accumulate = D._accumulate
    monkeypatch.setattr(D, "_accumulate", lambda *a, **k: sizes.append(a[6].shape[0]) or accumulate(*a, **k))
    chunked = boundary_distances(net, pts, max_memory=8_000_000)
    assert min(sizes) >= 16
    sizes.clear()
    apart = boundary_distances(net, pts, max_memory=min_memory(net))
    assert max(sizes) < 16
    for a, b, x in zip(chunked, apart, pts):
        dist, node, unit = plainpath.distance(net, x)
        assert a.distance == pytest.approx(dist, rel=1e-12) and (a.node, a.unit) == (node, unit)
        assert b.distance == pytest.approx(a.distance, rel=1e-12) and (b.node, b.unit) == (a.node, a.unit)


def test_one_dimensional_pools_one_direction_at_a_time(monkeypatch):
    """1-D max pools (overlapping and padded, then 2/2) through the one-direction squares, every
    candidate of a window at once: autograd's distances and nearest units."""
    from regionaudit.analysis import distance as D

    net = nf.mlp_max(3)
    pts = torch.randn(5, *net.input_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    want = [plainpath.distance(net, x) for x in pts]
    monkeypatch.setattr(D, "SQUARES_ONE_BY_ONE", 1)
    for got, (dist, node, unit) in zip(boundary_distances(net, pts), want):
        assert got.distance == pytest.approx(dist, rel=1e-12, abs=1e-15) and (got.node, got.unit) == (node, unit)


def test_max_pool_last_of_two_readers_of_the_first_relu():
    """A max pool that reads the first ReLU last but not alone: the other reader takes the ReLU's
    masked tangent, so the pool's margins are not taken from the shared Gram matrices (which
    leave the ReLU's tangent unmasked). Autograd's distances and nearest units."""
    g = nf.Builder((1, 6, 6), 2)
    r = g.relu(g.conv(0, 2, 3, pad=1))
    side = g.relu(g.conv(r, 2, 3, pad=1))
    pool = g.maxpool(r, 2, 2)
    net = g.network(g.dense(g.concat([g.flatten(side), g.flatten(pool)], 0), 2))
    _agrees_with_plainpath(net, torch.randn(3, *net.input_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))


def test_relu_after_a_broadcasting_scale_with_one_point():
    """A Scale without factors that broadcasts its input over the height gives an expanded
    tangent: the ReLU after it must not overwrite it in place (one point, where the tangent's
    point axis matches)."""
    g = nf.Builder((1, 4, 6), 3)
    row = g._add(ir.Conv(g.name("Conv"), (0,), (2, 1, 4), weight=g.randn(2, 1, 4, 3, std=0.5), bias=g.randn(2, std=0.3),
                         strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), groups=1))
    spread = g._add(ir.Scale(g.name("Add"), (row,), (2, 3, 4), mul=None, add=g.randn(2, 3, 4, std=0.3)))
    net = g.network(g.dense(g.flatten(g.relu(g.conv(g.relu(spread), 2, 3, pad=1))), 2))
    for k in range(3):
        x = torch.randn(1, *net.input_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(k))
        got = boundary_distances(net, x)[0]
        dist, node, unit = plainpath.distance(net, x[0])
        assert got.distance == pytest.approx(dist, rel=1e-12, abs=1e-15) and (got.node, got.unit) == (node, unit)


@pytest.mark.parametrize("bad", [float("nan"), float("-inf")])
def test_points_that_are_not_finite_are_refused(bad):
    """A NaN point is refused: it would get distance None, as a point with no boundary at all."""
    from regionaudit.errors import BadData

    net = nf.make("cnn_avg", 1)
    pts = torch.randn(3, *net.input_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    assert all(d.distance is not None for d in boundary_distances(net, pts))
    pts[2].view(-1)[5] = bad
    with pytest.raises(BadData, match="^points hold 1 NaN or infinite value \\(in float64\\)$"):
        boundary_distances(net, pts.tolist())


def test_what_a_point_holds_is_within_the_smallest_budget(monkeypatch):
    """A point holds its kink nodes' inputs and squared gradients (a max pool's per candidate)
    through all its chunks of directions: `min_memory` counts them with one direction, so at
    that budget the points go one at a time and what they hold fits, and below it the analysis
    is refused before it runs. (Counting one direction alone, it let a 3x3/1 pool's point hold
    about twice the budget.)"""
    from regionaudit.analysis import distance as D

    net = _overlapping_pool_net()
    pts = torch.randn(3, *net.input_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    held = []
    nearest = D._nearest
    monkeypatch.setattr(D, "_nearest", lambda network, order, kinks, sq, p: held.append(
        (p, sum(v.nbytes for v in (*kinks.values(), *sq.values())))) or nearest(network, order, kinks, sq, p))
    smallest = min_memory(net)
    got = boundary_distances(net, pts, max_memory=smallest)
    assert [p for p, _ in held] == [1, 1, 1]
    assert max(b for _, b in held) <= smallest
    assert max(b for _, b in held) > D._chunk_bytes(net, D.tangent_order(net), set())[0]  # (more than a direction holds)
    for a, x in zip(got, pts):
        dist, node, unit = plainpath.distance(net, x)
        assert a.distance == pytest.approx(dist, rel=1e-12) and (a.node, a.unit) == (node, unit)
    with pytest.raises(TooLarge, match="one point and one tangent direction"):
        boundary_distances(net, pts, max_memory=smallest - 1)
