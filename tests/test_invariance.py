"""The fast paths change no number: region counts equal the reference walk's, outputs at the knots
and boundary distances equal a plain evaluator's (tests/plainpath.py) within 1e-12 relative, on
the sample models and on random networks, with the convolution chunking forced on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import netfactory as nf
import plainpath
from regionaudit import conv, ir
from regionaudit.analysis.density import trace_segments
from regionaudit.analysis.distance import boundary_distances
from regionaudit.analysis.walk import walk_segment
from regionaudit.importer import import_model
from regionaudit.probes import as_rows, random_pairs

SAMPLES = Path(__file__).resolve().parent.parent / "sample_models"
SAMPLE_MODELS = [
    ("digits_mlp.onnx", "digits_test_flat.npy"),
    ("digits_cnn.onnx", "digits_test.npy"),
    ("digits_resnet.onnx", "digits_test.npy"),
    ("spirals_mlp.onnx", "spirals_test.npy"),
]


@pytest.fixture(params=[False, True], ids=["default-chunks", "tiny-chunks"])
def tiny_chunks(request, monkeypatch):
    """Force one probe per convolution chunk, so the chunked path runs on small nets too."""
    if request.param:
        monkeypatch.setattr(conv, "CHUNK_BYTES", 1)
        monkeypatch.setattr(conv, "UNFOLD_CHUNK_BYTES", 1)
    return request.param


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = max(float(b.abs().max()), 1e-300)
    return float((a - b).abs().max()) / scale


def _check(net: ir.Network, a: torch.Tensor, b: torch.Tensor, pts: torch.Tensor) -> None:
    traces = trace_segments(net, a, b)
    for s, tr in enumerate(traces):
        walked = walk_segment(net, a[s], b[s])
        assert tr.regions == walked.regions
        assert tr.knots_per_layer == walked.knots_per_layer
        tt = tr.t.to(net.dtype)[:, None]
        x = (1 - tt) * a[s].reshape(1, -1) + tt * b[s].reshape(1, -1)
        assert _rel(tr.outputs, plainpath.forward(net, x)) < 1e-12
    for got, x in zip(boundary_distances(net, pts), pts):
        dist, node, unit = plainpath.distance(net, x)
        assert got.distance == pytest.approx(dist, rel=1e-12)
        assert (got.node, got.unit) == (node, unit)


@pytest.mark.parametrize("model,data", SAMPLE_MODELS, ids=[m for m, _ in SAMPLE_MODELS])
def test_sample_models_unchanged(model, data, tiny_chunks):
    net = import_model(str(SAMPLES / model)).network
    rows = as_rows(np.load(SAMPLES / data).astype(np.float64), net.input_shape, "data")
    i, j = random_pairs(len(rows), 3, seed=0)
    a, b = torch.from_numpy(rows[i]), torch.from_numpy(rows[j])
    _check(net, a, b, torch.from_numpy(rows[:2]))


@pytest.mark.parametrize("kind", nf.KINDS + nf.TAIL_KINDS)
def test_random_nets_unchanged(kind, tiny_chunks):
    net = nf.make(kind, 21)
    a, b = nf.segments(net, 3, 22)
    _check(net, a, b, a[:2])


def test_asymmetric_pads_still_padded_explicitly(tiny_chunks):
    g = nf.Builder((2, 6, 6), 3)
    conv = g.conv(0, 3, 3)
    g.nodes[conv].pads = (1, 0, 0, 1)  # begin h, begin w, end h, end w
    g.nodes[conv].shape = (3, 5, 5)
    net = g.network(g.dense(g.flatten(g.relu(conv)), 2))
    a, b = nf.segments(net, 2, 4)
    _check(net, a, b, a[:1])


@pytest.mark.parametrize("capability", ["AVX2", "AVX512"])
def test_a_narrow_dense_product_gives_x_w_plus_b_either_way_round(capability, monkeypatch):
    """MatMul runs many probes into a narrow output as (W^T x^T)^T where MKL's AVX2 kernels are
    faster that way, as x @ W on AVX-512: either way, its forward and linear part are the
    product's within rounding, for a batch axis too."""
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(64, 10, generator=gen, dtype=torch.float64)
    b = torch.randn(10, generator=gen, dtype=torch.float64)
    node = ir.MatMul("Gemm", (0,), (10,), weight=w, bias=b)
    x = torch.randn(30, 4, 64, generator=gen, dtype=torch.float64)
    assert node._transposed(x) == (capability == "AVX2")
    assert _rel(node.forward([x]), x @ w + b) < 1e-14
    assert _rel(node.linear([x]), x @ w) < 1e-14
