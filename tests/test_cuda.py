"""The analyzers on CUDA give the CPU's region counts and, to rounding, its numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import netfactory as nf
from clirun import run
from regionaudit.analysis.density import trace_segments
from regionaudit.analysis.distance import boundary_distances
from regionaudit.api import audit
from regionaudit.bench.models import REALMODELS  # ../shared/realmodels beside the checkout
from regionaudit.importer.pipeline import import_model

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
    """The whole default audit (2-D slice, init reference, profile) on CUDA gives the CPU's counts."""
    kw = dict(data=str(SAMPLES / "digits_test.npy"), pairs=5, max_points=3)
    r = audit(str(SAMPLES / "digits_cnn.onnx"), device="auto", **kw)
    ref = audit(str(SAMPLES / "digits_cnn.onnx"), **kw)
    assert r.settings["device"] == "cuda" and r.environment["device"] == "cuda"
    assert [s.regions for s in r.density.segments] == [s.regions for s in ref.density.segments]
    assert np.allclose([p.distance for p in r.distance.points], [p.distance for p in ref.distance.points], rtol=1e-9)
    assert r.slice.regions == ref.slice.regions and r.slice.classes == ref.slice.classes
    assert r.density.profile["knot_layers"] == ref.density.profile["knot_layers"]
    cuda_seeds, cpu_seeds = r.reference["init"]["per_seed"], ref.reference["init"]["per_seed"]
    assert [s["segments"]["regions"] for s in cuda_seeds] == [s["segments"]["regions"] for s in cpu_seeds]


def test_cli_report_on_cuda(tmp_path, capsys):
    html, out_json = tmp_path / "r.html", tmp_path / "r.json"
    code, _, err = run([SAMPLES / "digits_cnn.onnx", "--data", SAMPLES / "digits_test.npy", "--pairs", 4,
                        "--max-points", 2, "--device", "cuda", "-o", html, "--json", out_json, "-q"], capsys)
    assert code == 0, err
    assert json.loads(out_json.read_text())["settings"]["device"] == "cuda"
    assert "<svg" in html.read_text()


def test_float32_convolutions_on_cuda_are_not_tf32():
    """cuDNN's default TF32 convolutions put this ResNet 1e-4 away from onnxruntime, which the
    import check refuses; true float32 passes it, and torch's process-wide flag is left as found."""
    path = REALMODELS / "cifar10_resnet_2b.onnx"
    if not path.is_file():
        pytest.skip("../shared/realmodels not present (third-party models are not shipped)")
    before = torch.backends.cudnn.allow_tf32
    imported = import_model(path, dtype=torch.float32, device="cuda")
    assert imported.network.device.type == "cuda" and imported.network.dtype == torch.float32
    assert torch.backends.cudnn.allow_tf32 == before


def test_the_long_run_estimate_samples_the_slice_on_cuda(monkeypatch):
    """The slice's timed sample and midline traces run on the device and see what the CPU sees."""
    from regionaudit import estimate as estimates
    from test_estimate import MIDLINES, _plane, scripted

    monkeypatch.setattr(estimates, "SLICE_SAMPLES", (500,))
    cpu = nf.make("cnn_max", 0)
    gpu = nf.make("cnn_max", 0).to(device="cuda")
    plane = _plane(cpu, 0)
    none = torch.zeros(0, *cpu.input_shape, dtype=torch.float64)
    on_cpu = estimates.estimate(cpu, (none, none), 0, none, None, None, scripted(0.0, 0.01, *MIDLINES), plane=plane)
    on_gpu = estimates.estimate(gpu, (none, none), 0, none, None, None, scripted(0.0, 0.01, *MIDLINES), plane=plane)
    assert on_cpu.slice_s > 0.01 and on_gpu.slice_s == pytest.approx(on_cpu.slice_s, rel=1e-12)
