"""Absolute deviation (deviation.py): hand examples and dense-sampling integrals."""

from __future__ import annotations

import math

import pytest
import torch

import netfactory as nf
from regionaudit.analysis.density import SegmentTrace, trace_segments
from regionaudit.analysis.deviation import absolute_deviation, deviation_norm


def _trace(t, outputs) -> SegmentTrace:
    return SegmentTrace(
        t=torch.tensor(t, dtype=torch.float64),
        outputs=torch.tensor(outputs, dtype=torch.float64),
        knots_per_layer={},
        truncated=False,
    )


def test_hand_example_with_sign_change():
    # output 0: residual 0, 1, -1, 0 (sign change in the middle piece: two triangles of area 1/8)
    # output 1: residual 0, 2, 2, 0 (no sign change)
    tr = _trace([0.0, 0.25, 0.75, 1.0], [[0.0, 0.0], [1.0, 2.0], [-1.0, 2.0], [0.0, 0.0]])
    dev = absolute_deviation(tr, length=3.0)
    assert dev.dtype == torch.float64 and dev.shape == (2,)
    assert dev.tolist() == pytest.approx([3.0 * 0.5, 3.0 * 1.5], rel=1e-15)
    assert deviation_norm(dev) == pytest.approx(math.hypot(1.5, 4.5), rel=1e-15)
    assert deviation_norm([3.0, 4.0]) == 5.0


def test_asymmetric_sign_change_and_chord():
    # f = 0 at t=0, 4 at t=1: chord 4t. Knot at t=0.5 with f = 3: residual 0 -> 1 -> 0.
    tr = _trace([0.0, 0.5, 1.0], [[0.0], [3.0], [4.0]])
    assert absolute_deviation(tr, 1.0).item() == pytest.approx(0.5, rel=1e-15)
    # residual 1 -> -3 over one piece of length 1: zero at 1/4, areas 1/8 + 9/8
    tr2 = _trace([0.0, 0.2, 0.6, 1.0], [[0.0], [1.0], [-3.0], [0.0]])
    expected = 0.2 * 1 / 2 + 0.4 * (1 + 9) / (2 * 4) + 0.4 * 3 / 2
    assert absolute_deviation(tr2, 2.0).item() == pytest.approx(2.0 * expected, rel=1e-15)


def test_affine_segment_has_zero_deviation():
    tr = _trace([0.0, 1.0], [[1.0, -2.0], [3.0, 5.0]])
    assert absolute_deviation(tr, 7.0).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("kind", ["resnet", "mlp_max"])
def test_matches_dense_sampling(kind):
    net = nf.make(kind, 5)
    a, b = nf.segments(net, 2, 6)
    for s, tr in enumerate(trace_segments(net, a, b)):
        assert tr.regions > 3
        length = float((b[s] - a[s]).norm())
        exact = absolute_deviation(tr, length)
        errors = []
        for n in (2_001, 200_001):
            t = torch.linspace(0, 1, n, dtype=torch.float64)[:, None]
            f = net.forward((1 - t) * a[s].reshape(1, -1) + t * b[s].reshape(1, -1))
            r = (f - ((1 - t) * f[0] + t * f[-1])).abs()
            dense = length * torch.trapezoid(r, t[:, 0], dim=0)
            errors.append(float(((dense - exact).abs() / exact.abs()).max()))
        assert errors[1] < 1e-7
        assert errors[1] < errors[0] / 100  # second-order convergence to the exact value


@pytest.mark.parametrize("scale", [1e-170, 1e170])
def test_hand_example_scaled_far_from_one(scale):
    """The sign change and the L2 norm hold for residuals whose products or squares underflow
    or overflow float64."""
    tr = _trace([0.0, 0.25, 0.75, 1.0], [[0.0, 0.0], [scale, 2 * scale], [-scale, 2 * scale], [0.0, 0.0]])
    dev = absolute_deviation(tr, length=3.0)
    assert dev.tolist() == pytest.approx([3.0 * 0.5 * scale, 3.0 * 1.5 * scale], rel=1e-14, abs=0)
    assert deviation_norm(dev) == pytest.approx(math.hypot(1.5, 4.5) * scale, rel=1e-14, abs=0)
    assert deviation_norm([3 * scale, 4 * scale]) == pytest.approx(5 * scale, rel=1e-15, abs=0)


def test_constant_output_across_knots_has_zero_deviation():
    """Clip with equal bounds: units cross (knots), but the outputs never change. Equal to
    rounding: the dense layer after the clip is refilled, its outputs at new knots the sums
    (1 - s) a + s b of its outputs at the old ones (an ulp off a where a = b)."""
    g = nf.Builder((4,), 0)
    net = g.network(g.dense(g.clip(g.dense(0, 40), 0.3, 0.3), 3))
    a, b = nf.segments(net, 3, 1)
    traces = trace_segments(net, a, b)
    assert all(tr.regions > 3 for tr in traces)
    eps = torch.finfo(torch.float64).eps
    for s, tr in enumerate(traces):
        scale, length = float(tr.outputs.abs().max()), float((b[s] - a[s]).norm())
        assert float((tr.outputs - tr.outputs[:1]).abs().max()) <= eps * scale
        assert max(absolute_deviation(tr, length).tolist()) <= eps * scale * length
