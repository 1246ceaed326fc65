"""Capacity bounds against hand-computed values and against brute-force region enumeration.

The brute force is independent of regionaudit's formulas: it enumerates activation patterns layer by
layer and keeps those whose region has an interior point, found with scipy's LP solver.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from regionaudit import capacity as C
from regionaudit import ir
from regionaudit.analysis.density import trace_segments
from conftest import export_with_batch_axis
from netfactory import Builder, mlp


def _affine_maps(net: ir.Network):
    """(A, c) per hidden layer: pre-activation = A @ h_prev + c, h_prev the previous layer's output."""
    layers, reason = C.chain_layers(net)
    assert layers is not None, reason
    maps, shape = [], net.input_shape
    for layer in layers:
        n_in = math.prod(shape)
        x = torch.cat([torch.zeros(1, n_in), torch.eye(n_in)]).to(torch.float64).reshape(n_in + 1, *shape)
        for node in layer.affine:
            x = node.forward([x])
            shape = node.shape
        flat = x.reshape(n_in + 1, -1).numpy()
        maps.append((flat[1:].T - flat[0][:, None], flat[0]))
    return maps


def brute_force_regions(net: ir.Network) -> int:
    """Activation regions with an interior point, by LP over every realisable pattern prefix."""
    maps = _affine_maps(net)
    n0 = math.prod(net.input_shape)

    def count(layer: int, P: np.ndarray, q: np.ndarray, G: np.ndarray, h: np.ndarray) -> int:
        # h_prev = P x + q on the current region {x : G x <= h}
        if layer == len(maps):
            return 1
        A, c = maps[layer]
        Z, z0 = A @ P, A @ q + c  # pre-activations, affine in x
        total = 0
        n = len(z0)

        def rec(i, G, h, mask):
            nonlocal total
            if i == n:
                m = np.asarray(mask, dtype=float)
                total += count(layer + 1, m[:, None] * Z, m * z0, G, h)
                return
            for on in (True, False):
                row = -Z[i] if on else Z[i]
                off = z0[i] if on else -z0[i]
                G2, h2 = np.vstack([G, row]), np.append(h, off)
                if _interior(G2, h2, n0):
                    rec(i + 1, G2, h2, mask + [on])

        rec(0, G, h, [])
        return total

    return count(0, np.eye(n0), np.zeros(n0), np.zeros((0, n0)), np.zeros(0))


def _interior(G: np.ndarray, h: np.ndarray, n0: int) -> bool:
    """Is {x : G x <= h} full-dimensional? Maximise s with G x + s‖g‖ <= h, inside a big box."""
    if len(G) == 0:
        return True
    norms = np.linalg.norm(G, axis=1)
    A = np.hstack([G, norms[:, None]])
    res = linprog(np.r_[np.zeros(n0), -1.0], A_ub=A, b_ub=h, bounds=[(-1e4, 1e4)] * n0 + [(0, 1)], method="highs")
    return res.status == 0 and -res.fun > 1e-7


def _bound(bounds, name):
    (b,) = [b for b in bounds if b["name"] == name]
    return b


def _count(cap, name):
    b = _bound(cap["bounds"], name)
    assert b["covered"], b["reason"]
    return round(10 ** b["log10"])


# ----------------------------------------------------------------- hand-computed values


def test_serra_and_montufar_hand_values():
    # n0 = 2, widths (2, 2): j1=0 -> 1*(1+2+1); j1=1 -> 2*(1+2); j1=2 -> 1*1  => 11
    assert C.serra2018([2, 2], 2) == 11
    assert C.montufar2017([2, 2], 2) == 16
    # n0 = 1, widths (1, 3): an inactive first unit leaves one region; the active side is cut by 3 points
    assert C.serra2018([1, 3], 1) == 5
    assert C.montufar2017([1, 3], 1) == 8
    assert C.montufar2014_lower([4, 4], 2) == (4 // 2) ** 2 * (1 + 4 + 6)
    assert C.zaslavsky(4, 2) == 11 and C.zaslavsky(3, 5) == 8


def test_log10_is_exact_for_huge_counts():
    n = C.zaslavsky(512, 64)
    assert n > 10**80
    assert C.log10_int(n) == pytest.approx(math.log10(n))
    assert C.log10_int(10**400) == 400.0


def test_xiong_theorem1_hand_values():
    # two disjoint windows of 2 inputs, 3 filters: each window is 3 lines in R^2 (7 regions)
    assert C.xiong2020_exact([frozenset({0, 1}), frozenset({2, 3})], 3) == 49
    # overlapping windows {0,1}, {1,2}: t_p <= 2, t_0 + t_1 <= 3  =>  7*7 - 3*3
    assert C.xiong2020_exact([frozenset({0, 1}), frozenset({1, 2})], 3) == 40


# ----------------------------------------------------------------- brute force


def test_one_hidden_layer_equals_arrangement():
    net = mlp(3, in_dim=2, widths=(4,), n_out=1)
    cap = C.capacity(net)
    assert _bound(cap["bounds"], "arrangement")["kind"] == "exact"
    assert brute_force_regions(net) == _count(cap, "arrangement") == 11
    assert _count(cap, "serra2018_upper") == 11 == _count(cap, "montufar2017_upper")


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("in_dim,widths", [(2, (3, 3)), (3, (2, 3)), (1, (1, 3))])
def test_upper_bounds_hold_on_random_weights(seed, in_dim, widths):
    net = mlp(seed, in_dim=in_dim, widths=widths, n_out=1)
    cap = C.capacity(net)
    found = brute_force_regions(net)
    serra, mont = _count(cap, "serra2018_upper"), _count(cap, "montufar2017_upper")
    assert found <= serra <= mont
    assert cap["log10_upper"] == pytest.approx(math.log10(serra))


def test_serra_is_attained_by_random_weights_where_it_is_tight():
    # n0 = 1, widths (1, 3): Serra's bound 5 is the true maximum; random weights with an active side reach it
    hits = [brute_force_regions(mlp(s, in_dim=1, widths=(1, 3), n_out=1)) for s in range(12)]
    assert max(hits) == C.serra2018([1, 3], 1) == 5


def test_montufar2014_lower_bound_is_reached_by_its_construction():
    # n0 = 1, widths (2, 2): a tent map folds [0, 1] twice; two units on the fold cut each half twice
    g = Builder((1,), 0)
    w1 = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    h = g._add(ir.MatMul("fold", (0,), (2,), weight=w1, bias=torch.tensor([0.0, -0.5], dtype=torch.float64)))
    h = g.relu(h)
    w2 = torch.tensor([[2.0, 2.0], [-4.0, -4.0]], dtype=torch.float64)
    z = g._add(ir.MatMul("cut", (h,), (2,), weight=w2, bias=torch.tensor([-1 / 3, -2 / 3], dtype=torch.float64)))
    net = g.network(g.relu(z))
    lower = _count(C.capacity(net), "montufar2014_lower")
    assert lower == 2 * (1 + 2)
    (tr,) = trace_segments(net, torch.tensor([[-1.0]], dtype=torch.float64), torch.tensor([[2.0]], dtype=torch.float64))
    assert tr.regions == 7 >= lower
    assert brute_force_regions(net) == 7


def _conv_net(seed, width, kernel, stride, filters, second=None):
    g = Builder((1, 1, width), seed)
    wt = g.randn(filters, 1, 1, kernel)
    out_w = (width - kernel) // stride + 1
    x = g._add(ir.Conv("conv", (0,), (filters, 1, out_w), weight=wt, bias=g.randn(filters),
                       strides=(1, stride), pads=(0, 0, 0, 0), dilations=(1, 1)))
    x = g.relu(x)
    if second:
        x = g.relu(g.dense(g.flatten(x), second))
    return g.network(x)


@pytest.mark.parametrize("width,kernel,stride,filters,expected", [(4, 2, 2, 3, 49), (3, 2, 1, 3, 40), (3, 2, 1, 2, 15)])
def test_xiong_theorem1_equals_brute_force(width, kernel, stride, filters, expected):
    net = _conv_net(1, width, kernel, stride, filters)
    cap = C.capacity(net)
    exact = _bound(cap["bounds"], "xiong2020_exact")
    assert exact["covered"], exact["reason"]
    assert _count(cap, "xiong2020_exact") == expected == brute_force_regions(net)
    # the arrangement count is only an upper bound here: conv hyperplanes are not in general position
    arr = _bound(cap["bounds"], "arrangement")
    assert arr["kind"] == "upper" and round(10 ** arr["log10"]) >= expected
    assert cap["log10_upper"] == pytest.approx(math.log10(expected))


def test_xiong_upper_on_two_layer_conv():
    net = _conv_net(2, 4, 2, 2, 2, second=2)
    cap = C.capacity(net)
    r1 = C.xiong2020_exact([frozenset({0, 1}), frozenset({2, 3})], 2)
    assert r1 == 16
    assert _count(cap, "xiong2020_upper") == r1 * C.zaslavsky(2, 4)
    assert brute_force_regions(net) <= _count(cap, "xiong2020_upper")
    assert not _bound(cap["bounds"], "xiong2020_exact")["covered"]


def test_xiong_falls_back_to_zaslavsky_when_enumeration_is_out_of_reach():
    net = _conv_net(0, 40, 2, 1, 8)
    b = _bound(C.capacity(net)["bounds"], "xiong2020_upper")
    assert b["covered"] and "Zaslavsky" in b["formula"]
    assert round(10 ** b["log10"]) == C.zaslavsky(39 * 8, 40) or b["log10"] == pytest.approx(C.log10_int(C.zaslavsky(39 * 8, 40)))


@pytest.mark.parametrize("kind,word", [("resnet", "residual"), ("concat", "concat"), ("cnn_max", "MaxPool")])
def test_uncovered_architectures_say_why(kind, word):
    from netfactory import make as build

    cap = C.capacity(build(kind, 0))
    assert cap["log10_upper"] is None and cap["log10_lower"] is None
    assert all(not b["covered"] and word in b["reason"] for b in cap["bounds"])


def test_line_bounds_use_one_input_dimension():
    net = mlp(0, in_dim=5, widths=(4, 3), n_out=2)
    cap = C.capacity(net)
    line = cap["line"]
    assert line["dimension"] == 1
    assert round(10 ** line["log10_upper"]) == C.serra2018([4, 3], 1)
    assert round(10 ** line["log10_lower"]) == 4 * (1 + 3)
    # a segment never crosses more regions than the line bound allows
    rng = np.random.default_rng(0)
    a, b = torch.from_numpy(rng.normal(size=(20, 5)) * 5), torch.from_numpy(rng.normal(size=(20, 5)) * 5)
    assert max(t.regions for t in trace_segments(net, a, b)) <= 10 ** line["log10_upper"]


# ----------------------------------------------------------------- wide nets


@pytest.mark.parametrize("seed", range(3))
def test_log_space_bounds_equal_the_exact_integers(seed):
    """The float64 log-space sums that take over past EXACT_UNITS hidden units give the exact
    integers' log10 to 1e-12 relative, on random widths (some below n_0, some above)."""
    rng = np.random.default_rng(seed)
    for _ in range(40):
        widths = [int(w) for w in rng.integers(1, 400, size=rng.integers(1, 5))]
        n0 = int(rng.integers(1, 500))
        for exact, in_logs in ((C.serra2018, C.log10_serra2018), (C.montufar2017, C.log10_montufar2017)):
            assert in_logs(widths, n0) == pytest.approx(C.log10_int(exact(widths, n0)), rel=1e-12)
        if min(widths) >= n0:
            assert C.log10_montufar2014_lower(widths, n0) == pytest.approx(
                C.log10_int(C.montufar2014_lower(widths, n0)), rel=1e-12)
        n, d = int(rng.integers(1, 3000)), int(rng.integers(1, 4000))
        assert C.log10_zaslavsky(n, d) == pytest.approx(C.log10_int(C.zaslavsky(n, d)), rel=1e-12)
    widths, n0 = [3000, 2000, 1000], 2500  # a net near the switch, both ways
    assert C.log10_serra2018(widths, n0) == pytest.approx(C.log10_int(C.serra2018(widths, n0)), rel=1e-12)


@pytest.mark.parametrize("widths,n0", [([100_000], 1), ([17_000, 3_000], 3), ([20_000, 20_000], 2), ([18_000], 3_000)])
def test_log_space_bounds_hold_their_precision_on_wide_layers(widths, n0):
    """Past EXACT_UNITS, where they are used: a small n_0 keeps the counts small beside ln n!,
    which lgamma's difference alone would cancel to about 1e-11 relative."""
    assert sum(widths) > C.EXACT_UNITS
    for exact, in_logs in ((C.serra2018, C.log10_serra2018), (C.montufar2017, C.log10_montufar2017)):
        assert in_logs(widths, n0) == pytest.approx(C.log10_int(exact(widths, n0)), rel=1e-13)
    assert C.log10_zaslavsky(widths[0], n0) == pytest.approx(C.log10_int(C.zaslavsky(widths[0], n0)), rel=1e-13)


def test_wide_nets_get_their_bounds_in_log_space():
    """Hidden layers past EXACT_UNITS units in all (a conv net's layers count every unit): the
    bounds come from the log-space sums, with Serra's at most Montúfar's and on a line the
    exact sums again (Serra's bound over 8192 + 4096 + 2048 units took minutes as integers)."""
    widths, n0 = [60_000, 30_000, 8_000], 12_288
    assert sum(widths) > C.EXACT_UNITS
    layers = [C.Layer(f"Relu_{i}", n, True, []) for i, n in enumerate(widths)]
    bounds = {b["name"]: b for b in C.dense_bounds(layers, "", n0, exact_ok=True, lower_ok=True)}
    assert bounds["serra2018_upper"]["log10"] == C.log10_serra2018(widths, n0)
    assert bounds["montufar2017_upper"]["log10"] == C.log10_montufar2017(widths, n0)
    assert bounds["serra2018_upper"]["log10"] <= bounds["montufar2017_upper"]["log10"]
    assert bounds["montufar2014_lower"]["reason"] == f"needs every width ≥ n_0 = {n0}"
    line = {b["name"]: b for b in C.dense_bounds(layers, "", 1, exact_ok=True, lower_ok=True)}
    assert line["serra2018_upper"]["log10"] == pytest.approx(C.log10_int(C.serra2018(widths, 1)), rel=1e-12)


def _imported(tmp_path, module: torch.nn.Module, input_shape) -> ir.Network:
    """The module exported by torch with a batch axis, read through the importer, as a user's file is."""
    from regionaudit.importer import import_model

    path = tmp_path / "m.onnx"
    export_with_batch_axis(module.eval(), input_shape, path)
    return import_model(path).network


@pytest.mark.parametrize("width,kernel,stride,filters,expected", [(4, 2, 2, 3, 49), (3, 2, 1, 3, 40), (3, 2, 1, 2, 15)])
def test_xiong_theorem1_on_an_imported_conv_whose_graph_has_a_batch_axis(tmp_path, width, kernel, stride, filters, expected):
    """The graph's batch axis is no input channel: with it read as one, every (filter, position)
    was a position of its own, and a 9-input conv was given 48 957 regions (above the upper bound)."""
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(1, filters, (1, kernel), (1, stride)), torch.nn.ReLU(),
                                 torch.nn.Flatten(), torch.nn.Linear(filters * ((width - kernel) // stride + 1), 2))
    cap = C.capacity(_imported(tmp_path, module, (1, 1, width)))
    exact = _bound(cap["bounds"], "xiong2020_exact")
    assert exact["covered"] and _count(cap, "xiong2020_exact") == expected  # (brute force: test_xiong_theorem1_equals_brute_force)
    assert f"over {(width - kernel) // stride + 1} output positions" in exact["formula"]
    assert cap["log10_lower"] <= cap["log10_upper"]


def test_a_layer_without_biases_has_no_exact_or_lower_count(tmp_path):
    """Without biases every hyperplane of the first layer passes through the origin: 3 lines in the
    plane make 6 regions, not Zaslavsky's 7, and Montúfar's construction (which needs offsets)
    does not apply; a line missing the origin still cuts them at 3 points."""
    torch.manual_seed(1)
    net = _imported(tmp_path, torch.nn.Sequential(torch.nn.Linear(2, 3, bias=False), torch.nn.ReLU(), torch.nn.Linear(3, 2)), (2,))
    cap = C.capacity(net)
    arr = _bound(cap["bounds"], "arrangement")
    assert arr["kind"] == "upper" and _count(cap, "arrangement") == 7 and "no biases" in arr["formula"]
    assert not _bound(cap["bounds"], "montufar2014_lower")["covered"] and cap["log10_lower"] is None
    assert brute_force_regions(net) == 6
    line = _bound(cap["line"]["bounds"], "arrangement")
    assert line["kind"] == "exact" and round(10 ** line["log10"]) == 4
    assert _bound(cap["line"]["bounds"], "montufar2014_lower")["covered"]  # (the line gives the first layer offsets)
    deeper = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4, bias=False), torch.nn.ReLU(),
                                 torch.nn.Linear(4, 2))
    assert not _bound(C.capacity(_imported(tmp_path, deeper, (3,)))["line"]["bounds"], "montufar2014_lower")["covered"]
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 2, (1, 2), bias=False), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4, 2))
    xiong = _bound(C.capacity(_imported(tmp_path, conv, (1, 1, 3)))["bounds"], "xiong2020_exact")
    assert not xiong["covered"] and "no biases" in xiong["reason"]


def test_a_weight_shared_across_tokens_is_no_dense_layer(tmp_path):
    """Linear(1, 3) on each of 2 tokens: 3 vertical and 3 horizontal lines, always a 4 x 4 grid of
    16 regions; read as one dense map of 6 units it was given an exact 22."""
    torch.manual_seed(2)
    module = torch.nn.Sequential(torch.nn.Linear(1, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(6, 2))
    cap = C.capacity(_imported(tmp_path, module, (2, 1)))
    assert _bound(cap["bounds"], "arrangement")["kind"] == "upper"
    assert cap["log10_lower"] is None or cap["log10_lower"] <= math.log10(16)
    assert cap["log10_upper"] >= math.log10(16)


def test_an_offset_before_the_product_is_no_bias(tmp_path):
    """An input normalisation (x - m) / s before a bias-free layer gives it a value at x = 0, yet
    every hyperplane still passes through x = m: 3 lines in the plane make 6 regions, not 7."""
    class Normalised(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.out = torch.nn.Linear(2, 3, bias=False), torch.nn.Linear(3, 2)

        def forward(self, x):
            return self.out(torch.relu(self.fc((x - 0.5) / 2.0)))

    torch.manual_seed(4)
    net = _imported(tmp_path, Normalised(), (2,))
    cap = C.capacity(net)
    assert _bound(cap["bounds"], "arrangement")["kind"] == "upper" and cap["log10_lower"] is None
    assert brute_force_regions(net) == 6

