"""The analyzers on CUDA give the CPU's region counts and, to rounding, its numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import netfactory as nf
from regionaudit.analysis.density import trace_segments
from regionaudit.analysis.distance import boundary_distances
from regionaudit.api import audit

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the CUDA tests need a GPU")

SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"


@pytest.mark.parametrize("kind", nf.KINDS + nf.TAIL_KINDS)
def test_cuda_counts_and_values_equal_cpu(kind):
    cpu = nf.make(kind, 31)
    gpu = nf.make(kind, 31).to(device="cuda")
    a, b = nf.segments(cpu, 4, 32)
    for c, g in zip(trace_segments(cpu, a, b), trace_segments(gpu, a, b)):
        assert c.regions == g.regions and c.knots_per_layer == g.knots_per_layer
        assert float((c.t - g.t.cpu()).abs().max()) < 1e-9
    for directions in (None, 64):
        dc = boundary_distances(cpu, a, directions=directions)
        dg = boundary_distances(gpu, a, directions=directions)
        for x, y in zip(dc, dg):
            assert y.distance == pytest.approx(x.distance, rel=1e-9)
            assert (x.node, x.unit) == (y.node, y.unit)


def test_device_auto_audits_on_cuda():
    r = audit(str(SAMPLES / "digits_cnn.onnx"), data=str(SAMPLES / "digits_test.npy"), pairs=5, max_points=3, device="auto", slice=False)
    ref = audit(str(SAMPLES / "digits_cnn.onnx"), data=str(SAMPLES / "digits_test.npy"), pairs=5, max_points=3, slice=False)
    assert r.settings["device"] == "cuda" and r.environment["device"] == "cuda"
    assert [s.regions for s in r.density.segments] == [s.regions for s in ref.density.segments]
    assert np.allclose([p.distance for p in r.distance.points], [p.distance for p in ref.distance.points], rtol=1e-9)
