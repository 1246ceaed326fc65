"""The long-run estimate, with a scripted clock: never a wall-clock assert."""

import math

import pytest
import torch

import netfactory
from regionaudit import estimate as estimates
from regionaudit.analysis.density import trace_segments
from regionaudit.analysis.slices import Plane, partition_plane
from regionaudit.analysis.walk import walk_segment
from regionaudit.estimate import Estimate, estimate, format_duration, long_run_message


def scripted(*readings):
    it = iter(readings)
    return lambda: next(it)


QUICK_PARTS = (0.0,) * 8  # a segment's parts, untimed first and then at 1/256, 1/32 and 1/4 of it: no time at all
MIDLINES = (0.0,) * 20  # the 2-D slice's two midlines: quick parts, then each traced whole


def test_a_slow_first_point_is_timed_again_and_with_a_batch():
    net = netfactory.make("mlp", 0)
    none = torch.zeros(0, *net.input_shape, dtype=torch.float64)
    points = torch.randn(20, *net.input_shape, dtype=torch.float64)
    clock = scripted(
        0.0, 1.9,  # one point, cold: 1.9 s, so 20 points look long
        1.9, 3.5,  # again: 1.6 s
        3.5, 7.5,  # 16 points at once: 4 s, so 0.16 s per point after the first
    )
    est = estimate(net, (none, none), None, points, None, None, clock)
    assert est == Estimate(seconds=pytest.approx(1.6 + 19 * 0.16), segments=0, points=20)


def test_loop_edges_are_timed_on_their_own():
    """A loop's edges, a few pixels each, were costed as whole data segments (a 34 s run of 300
    loops was said to take 9 min) or, with no --pairs, not at all; and the hint named --pairs."""
    net = netfactory.make("mlp", 0)
    none = torch.zeros(0, *net.input_shape, dtype=torch.float64)
    starts = torch.randn(16, *net.input_shape, dtype=torch.float64)
    ends = starts + 0.01
    short = estimate(net, (none, none), (starts, ends, 1000), none, None, None, scripted(0.0, 0.001))
    assert short == Estimate(seconds=pytest.approx(1.0), segments=0, points=0, loop_edges=1000, loops_s=pytest.approx(1.0))
    clock = scripted(
        0.0, 0.2,  # one edge, cold: 0.2 s, so 1000 edges look long
        0.2, 0.3,  # again: 0.1 s
        0.3, 1.9,  # the first loop's 16 edges at once: 1.6 s, so 0.1 s per edge after the first
    )
    long = estimate(net, (none, none), (starts, ends, 1000), none, None, None, clock)
    assert long.seconds == pytest.approx(100.0) and long.loops_s == pytest.approx(100.0)
    assert long_run_message(long, True, False, "float64", "cpu") == (
        "this audit will take about 100 s (0 segments, 1000 loop edges, 0 points); faster with fewer --loops or "
        "--loop-steps, --dtype float32, --device cuda")


def test_an_item_that_takes_seconds_is_timed_once():
    net = netfactory.make("mlp", 0)
    none = torch.zeros(0, *net.input_shape, dtype=torch.float64)
    points = torch.randn(5, *net.input_shape, dtype=torch.float64)
    # one point takes 12 s: timing it again would double the wait for a first-call cost lost in it
    est = estimate(net, (none, none), None, points, None, None, scripted(0.0, 12.0))
    assert est == Estimate(seconds=60.0, segments=0, points=5)


def test_a_fixed_cost_per_call_is_not_counted_per_item():
    net = netfactory.make("mlp", 0)
    a, b = netfactory.segments(net, 100, seed=1)
    none = torch.zeros(0, *net.input_shape, dtype=torch.float64)
    # one segment 0.5 s (x 100 = 50 s, long); 16 at once 0.65 s: 0.01 s per segment
    est = estimate(net, (a, b), None, none, None, None, scripted(*QUICK_PARTS, 1.0, 1.5, 2.0, 2.65))
    assert est.seconds == pytest.approx(0.5 + 99 * 0.01)
    assert long_run_message(est, True, True, "float64", "cpu") is None
    # one segment 0.2 s (x 100 = 20 s): short enough as it is, nothing more is timed
    est = estimate(net, (a, b), None, none, None, None, scripted(*QUICK_PARTS, 0.0, 0.2))
    assert est.seconds == pytest.approx(20.0)
    # an item that takes seconds by itself is the cost: no batch of them is run
    est = estimate(net, (a, b), None, none, None, None, scripted(*QUICK_PARTS, 3.0, 5.0))
    assert est.seconds == pytest.approx(200.0)


def test_kinds_short_alone_but_long_together_are_refined():
    """Segments and points each under LONG_RUN_S by their single-item bound were taken at that
    bound, though together they passed it: a 10 s audit was said to take 35 s. Where the sum is
    long, each kind is timed again and with a batch, as a kind long alone is."""
    net = netfactory.make("mlp", 0)
    a, b = netfactory.segments(net, 100, seed=1)
    points = torch.randn(100, *net.input_shape, dtype=torch.float64)
    clock = scripted(
        *QUICK_PARTS, 0.0, 0.2,  # one segment 0.2 s (x 100 = 20 s)
        0.2, 0.4,  # one point, cold: 0.2 s (x 100 = 20 s); 40 s in all, so both are refined
        0.4, 0.75,  # 16 segments at once: 0.35 s, 0.01 s per segment after the first
        0.75, 0.85,  # one point again: 0.1 s
        0.85, 1.1,  # 16 points at once: 0.25 s, 0.01 s per point after the first
    )
    est = estimate(net, (a, b), None, points, None, None, clock)
    assert est == Estimate(seconds=pytest.approx(0.2 + 99 * 0.01 + 0.1 + 99 * 0.01), segments=100, points=100)
    assert long_run_message(est, True, True, "float64", "cpu") is None
    # the init reference's copies are counted at the refined rates
    clock = scripted(*QUICK_PARTS, 0.0, 0.2, 0.2, 0.4, 0.4, 0.75, 0.75, 0.85, 0.85, 1.1)
    est = estimate(net, (a, b), None, points, None, None, clock, reference_copies=2)
    assert est.reference_s == pytest.approx(2 * (1.19 * 20 / 100 + 1.09 * 10 / 100))


class Spy:
    """`trace_segments` as the estimate calls it, recording each call's segments and traces."""

    def __init__(self, monkeypatch):
        self.calls = []
        monkeypatch.setattr(estimates, "trace_segments", self)

    def __call__(self, network, a, b, **kw):
        traces = trace_segments(network, a, b, **kw)
        self.calls.append((a, b, kw, traces))
        return traces


def test_a_slow_segment_is_timed_on_parts_spread_along_it(monkeypatch):
    spy = Spy(monkeypatch)
    net = netfactory.make("mlp", 0)
    a, b = netfactory.segments(net, 10, seed=1)
    none = torch.zeros(0, *net.input_shape, dtype=torch.float64)
    clock = scripted(
        0.0, 9.0,  # the parts at 1/256 of the segment, cold: not counted
        9.0, 9.1,  # again: 0.1 s
        9.1, 10.1,  # at 1/32 of the segment: 1 s, long enough to take to the whole
    )
    est = estimate(net, (a, b), None, none, None, None, clock)
    per_share = (1.0 - 0.1) / (1 / 32 - 1 / 256)  # 0.9 s more for 7/256 more of the segment
    assert est == Estimate(seconds=pytest.approx(10 * (1.0 + per_share * (1 - 1 / 32))), segments=10, points=0)
    # eight parts, spread evenly along the first segment, 1/256 of it and then 1/32; never the whole
    assert len(spy.calls) == 3
    for (starts, ends, _, _), share in zip(spy.calls, (1 / 256, 1 / 256, 1 / 32)):
        t0 = ((starts - a[0]) / (b[0] - a[0])).mean(1)
        t1 = ((ends - a[0]) / (b[0] - a[0])).mean(1)
        centres = (torch.arange(8, dtype=torch.float64) + 0.5) / 8
        assert torch.allclose((t0 + t1) / 2, centres) and torch.allclose(t1 - t0, torch.full((8,), share / 8, dtype=torch.float64))


def test_a_segment_costs_the_knots_it_will_find(monkeypatch):
    spy = Spy(monkeypatch)
    net = netfactory.make("cnn_max", 0)
    a, b = netfactory.segments(net, 10, seed=1)
    none = torch.zeros(0, *net.input_shape, dtype=torch.float64)
    clock = scripted(0.0, 0.0, 0.0, 0.1, 0.1, 0.2, 0.2, 1.2)  # 1 s at 1/4 of the segment
    est = estimate(net, (a, b), None, none, 10, None, clock)
    knots = sum(t.knots for t in spy.calls[-1][3])
    assert knots > 10  # the parts hold more knots than --max-knots 10 lets a segment find: in proportion
    assert est.seconds == pytest.approx(10 * 1.0 * 10 / knots)
    # without --max-knots, the line through the last two timings is taken to the whole segment
    est = estimate(net, (a, b), None, none, None, None, scripted(0.0, 0.0, 0.0, 0.1, 0.1, 0.2, 0.2, 1.2))
    assert est.seconds == pytest.approx(10 * (1.0 + 0.9 / (1 / 4 - 1 / 32) * 3 / 4))
    # a fixed cost per call (every trace 1 s, whatever its share) is not scaled
    est = estimate(net, (a, b), None, none, None, None, scripted(0.0, 0.0, 0.0, 1.0, 1.0, 2.0))
    assert est.seconds == pytest.approx(10 * 1.0)


def _plane(net, seed: int) -> Plane:
    d = math.prod(net.input_shape)
    gen = torch.Generator().manual_seed(seed)
    return Plane(torch.randn(d, generator=gen, dtype=torch.float64), torch.randn(2, d, generator=gen, dtype=torch.float64),
                 (-1.5, 1.5, -1.0, 1.0))


def test_a_slice_its_sample_finishes_costs_the_sample():
    net = netfactory.make("mlp", 0)
    none = torch.zeros(0, *net.input_shape, dtype=torch.float64)
    est = estimate(net, (none, none), None, none, None, None, scripted(0.0, 4.0), plane=_plane(net, 0))
    assert est == Estimate(seconds=4.0, segments=0, points=0, slice_s=4.0)
    assert long_run_message(Estimate(31.0, 0, 0, slice_s=16.0), False, False, "float32", "cuda") == (
        "this audit will take about 31 s (0 segments, 0 points); faster with --no-slice or a lower --max-regions"
    )


def test_a_larger_slice_is_scaled_to_the_regions_its_midlines_foretell(monkeypatch):
    monkeypatch.setattr(estimates, "SLICE_SAMPLES", (500,))
    net = netfactory.make("cnn_max", 0)
    plane = _plane(net, 0)
    none = torch.zeros(0, *net.input_shape, dtype=torch.float64)
    umin, umax, vmin, vmax = plane.box
    cu, cv = plane.centre
    starts, ends = plane.points([[umin, cv], [cu, vmin]]), plane.points([[umax, cv], [cu, vmax]])
    n_u, n_v = (walk_segment(net, starts[k], ends[k]).regions - 1 for k in range(2))  # the reference walk
    expected = 1 + n_u + n_v + math.pi / 4 * n_u * n_v
    sample = partition_plane(net, plane, max_regions=500)
    assert sample.truncated
    est = estimate(net, (none, none), None, none, None, None, scripted(0.0, 0.01, *MIDLINES), plane=plane)
    assert est.slice_s == pytest.approx(0.01 * expected / sample.regions)
    # at most --max-regions
    est = estimate(net, (none, none), None, none, None, None, scripted(0.0, 0.01, *MIDLINES), plane=plane, max_regions=5000)
    assert est.slice_s == pytest.approx(0.01 * 5000 / sample.regions)
    # midlines counted within --max-knots, as the audit counts: cut at 5 knots each, they foretell
    # fewer regions than the sample holds
    est = estimate(net, (none, none), None, none, 5, None, scripted(0.0, 0.01, *MIDLINES), plane=plane)
    assert est.slice_s == pytest.approx(0.01)
    # long: the sample is timed again, without first-call costs
    est = estimate(net, (none, none), None, none, None, None, scripted(0.0, 1.5, *MIDLINES, 1.5, 2.0), plane=plane)
    assert est.slice_s == pytest.approx(0.5 * expected / sample.regions)
    # a first, smaller sample that takes a second already is the sample (and at 2.5 s, timed once)
    monkeypatch.setattr(estimates, "SLICE_SAMPLES", (100, 500))
    small = partition_plane(net, plane, max_regions=100)
    est = estimate(net, (none, none), None, none, None, None, scripted(0.0, 2.5, *MIDLINES), plane=plane)
    assert est.slice_s == pytest.approx(2.5 * expected / small.regions)
    est = estimate(net, (none, none), None, none, None, None, scripted(0.0, 0.1, 0.1, 0.2, *MIDLINES), plane=plane)
    assert est.slice_s == pytest.approx(0.1 * expected / sample.regions)
    # the guess errs long, but not by much: the whole plane holds more than half of it
    whole = partition_plane(net, plane)
    assert not whole.truncated and expected / 2 < whole.regions < expected


def test_a_slow_midline_is_foretold_from_its_parts(monkeypatch):
    monkeypatch.setattr(estimates, "SLICE_SAMPLES", (500,))
    net = netfactory.make("cnn_max", 0)
    plane = _plane(net, 0)
    none = torch.zeros(0, *net.input_shape, dtype=torch.float64)
    sample = partition_plane(net, plane, max_regions=500)
    spy = Spy(monkeypatch)
    slow_parts = (0.0, 0.0, 0.0, 0.1, 0.1, 1.1)  # untimed, then 1/256 (0.1 s), then 1/32 (1 s): scaled by 32
    est = estimate(net, (none, none), None, none, None, None, scripted(0.0, 0.01, *slow_parts, *slow_parts), plane=plane)
    assert len(spy.calls) == 6  # three calls of parts per midline, no midline traced whole
    n_u, n_v = (32 * sum(t.knots for t in spy.calls[k][3]) for k in (2, 5))
    assert n_u > 0 and n_v > 0
    expected = 1 + n_u + n_v + math.pi / 4 * n_u * n_v
    assert est.slice_s == pytest.approx(0.01 * expected / sample.regions)


def test_the_message_names_what_would_help():
    est = Estimate(seconds=31.0, segments=100, points=100)
    assert long_run_message(Estimate(30.0, 100, 100), True, True, "float64", "cpu") is None
    assert long_run_message(est, True, True, "float64", "cpu") == (
        "this audit will take about 31 s (100 segments, 100 points); faster with fewer --pairs, "
        "fewer --max-points, --dtype float32, --device cuda"
    )
    assert long_run_message(est, False, False, "float32", "cuda") == "this audit will take about 31 s (100 segments, 100 points)"


def test_durations_read_as_spoken():
    assert [format_duration(s) for s in (0.4, 45, 89.6, 279, 3599, 3600, 4800)] == [
        "0 s", "45 s", "90 s", "5 min", "1 h", "1 h", "1 h 20 min"
    ]
