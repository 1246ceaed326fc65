"""The long-run estimate, with a scripted clock: never a wall-clock assert."""

import math

import pytest
import torch

import netfactory
from regionaudit import estimate as estimates
from regionaudit.analysis.slices import Plane, partition_plane
from regionaudit.analysis.walk import walk_segment
from regionaudit.estimate import Estimate, estimate, format_duration, long_run_message


def scripted(*readings):
    it = iter(readings)
    return lambda: next(it)


def test_a_slow_first_sample_is_timed_again_and_with_a_batch():
    net = netfactory.make("mlp", 0)
    a, b = netfactory.segments(net, 10, seed=1)
    points = torch.randn(5, *net.input_shape, dtype=torch.float64)
    clock = scripted(
        0.0, 100.0,  # one segment, cold: 100 s, so 16 segments (10 + 6 loop edges) look long
        100.0, 101.0,  # again: 1 s
        101.0, 111.0,  # all 10 segments at once: 10 s, so 1 s per segment
        200.0, 250.0, 250.0, 252.0,  # one point: 50 s cold, then 2 s
        252.0, 262.0,  # all 5 points: 10 s, so 2 s per point
    )
    est = estimate(net, (a, b), 6, points, None, None, clock)
    assert est == Estimate(seconds=(1 + 15 * 1.0) + (2 + 4 * 2.0), segments=16, points=5)


def test_a_fixed_cost_per_call_is_not_counted_per_item():
    net = netfactory.make("mlp", 0)
    a, b = netfactory.segments(net, 100, seed=1)
    none = torch.zeros(0, *net.input_shape, dtype=torch.float64)
    # one segment 0.5 s (x 100 = 50 s, long), again 0.5 s; 16 at once 0.65 s: 0.01 s per segment
    est = estimate(net, (a, b), 0, none, None, None, scripted(0.0, 0.5, 1.0, 1.5, 2.0, 2.65))
    assert est.seconds == pytest.approx(0.5 + 99 * 0.01)
    assert long_run_message(est, True, True, "float64", "cpu") is None
    # one segment 0.2 s (x 100 = 20 s): short enough as it is, nothing more is timed
    est = estimate(net, (a, b), 0, none, None, None, scripted(0.0, 0.2))
    assert est.seconds == pytest.approx(20.0)
    # an item that takes seconds by itself is the cost: no batch of them is run
    est = estimate(net, (a, b), 0, none, None, None, scripted(0.0, 3.0, 3.0, 5.0))
    assert est.seconds == pytest.approx(200.0)


def _plane(net, seed: int) -> Plane:
    d = math.prod(net.input_shape)
    gen = torch.Generator().manual_seed(seed)
    return Plane(torch.randn(d, generator=gen, dtype=torch.float64), torch.randn(2, d, generator=gen, dtype=torch.float64),
                 (-1.5, 1.5, -1.0, 1.0))


def test_a_slice_its_sample_finishes_costs_the_sample():
    net = netfactory.make("mlp", 0)
    none = torch.zeros(0, *net.input_shape, dtype=torch.float64)
    est = estimate(net, (none, none), 0, none, None, None, scripted(0.0, 4.0), plane=_plane(net, 0))
    assert est == Estimate(seconds=4.0, segments=0, points=0, slice_s=4.0)
    assert long_run_message(Estimate(31.0, 0, 0, slice_s=16.0), False, False, "float32", "cuda") == (
        "this audit will take about 31 s (0 segments, 0 points); faster with --no-slice or a lower --max-regions"
    )


def test_a_larger_slice_is_scaled_to_the_regions_its_midlines_foretell(monkeypatch):
    monkeypatch.setattr(estimates, "SLICE_SAMPLE", 500)
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
    est = estimate(net, (none, none), 0, none, None, None, scripted(0.0, 0.01), plane=plane)
    assert est.slice_s == pytest.approx(0.01 * expected / sample.regions)
    # at most --max-regions
    est = estimate(net, (none, none), 0, none, None, None, scripted(0.0, 0.01), plane=plane, max_regions=5000)
    assert est.slice_s == pytest.approx(0.01 * 5000 / sample.regions)
    # midlines counted within --max-knots, as the audit counts: cut at 5 knots each, they foretell
    # fewer regions than the sample holds
    est = estimate(net, (none, none), 0, none, 5, None, scripted(0.0, 0.01), plane=plane)
    assert est.slice_s == pytest.approx(0.01)
    # long: the sample is timed again, without first-call costs
    est = estimate(net, (none, none), 0, none, None, None, scripted(0.0, 10.0, 10.0, 12.0), plane=plane)
    assert est.slice_s == pytest.approx(2.0 * expected / sample.regions)
    # the guess errs long, but not by much: the whole plane holds more than half of it
    whole = partition_plane(net, plane)
    assert not whole.truncated and expected / 2 < whole.regions < expected


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
