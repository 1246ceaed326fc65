"""The long-run estimate, with a scripted clock: never a wall-clock assert."""

import torch

import netfactory
from regionaudit.estimate import Estimate, estimate, format_duration, long_run_message


def scripted(*readings):
    it = iter(readings)
    return lambda: next(it)


def test_the_faster_of_two_samples_is_scaled_up():
    net = netfactory.make("mlp", 0)
    a, b = netfactory.segments(net, 10, seed=1)
    points = torch.randn(5, *net.input_shape, dtype=torch.float64)
    # segment: a cold first run of 100 s, then 1 s; point: 50 s, then 2 s
    clock = scripted(0.0, 100.0, 100.0, 101.0, 200.0, 250.0, 250.0, 252.0)
    est = estimate(net, (a, b), 6, points, None, None, clock)
    assert est == Estimate(seconds=(10 + 6) * 1.0 + 5 * 2.0, segments=16, points=5)


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
