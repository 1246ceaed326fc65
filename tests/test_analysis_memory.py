"""Memory-bounded exact analysis: a segment with over 100 000 regions in a small budget."""

from __future__ import annotations

import torch

from regionaudit.analysis.density import trace_segments
from regionaudit.analysis.distance import boundary_distances
from regionaudit.bench.models import sawtooth


def test_sawtooth_many_regions_in_a_small_budget():
    depth = 17
    net = sawtooth(depth)(torch.float64, "cpu")
    a = torch.zeros(1, 1, dtype=torch.float64)
    b = torch.ones(1, 1, dtype=torch.float64)
    tr = trace_segments(net, a, b, max_memory=1_000_000)[0]  # about 2 000 knots per pass
    assert tr.regions == 2**depth  # 131 072
    expected = torch.arange(2**depth + 1, dtype=torch.float64) / 2**depth
    assert float((tr.t - expected).abs().max()) < 1e-12
    # every knot is made by the tent whose threshold unit crosses there: 2**(k-1) by tent k
    assert sorted(tr.knots_per_layer.values()) == [2**k for k in range(depth)]
    # the same count with the default budget (one pass, no joins)
    assert trace_segments(net, a, b)[0].regions == 2**depth


def test_distance_in_a_small_budget_equals_one_chunk():
    net = sawtooth(6)(torch.float64, "cpu")
    pts = torch.linspace(0.01, 0.99, 40, dtype=torch.float64).reshape(-1, 1)
    big = boundary_distances(net, pts)
    small = boundary_distances(net, pts, max_memory=2_000)
    assert [(p.node, p.unit) for p in big] == [(p.node, p.unit) for p in small]
    assert all(abs(p.distance - q.distance) <= 1e-12 * q.distance for p, q in zip(small, big))
    # the distance to the nearest knot k / 64 of the sawtooth
    for p, x in zip(big, pts[:, 0].tolist()):
        assert abs(p.distance - min(abs(x - k / 64) for k in range(1, 64))) < 1e-12


def test_no_segments_need_no_budget():
    """An audit of points or a slice only traces no segment: the density stage's smallest piece
    was checked against --max-memory all the same, and refused a run whose work fitted."""
    net = sawtooth(6)(torch.float64, "cpu")
    none = torch.zeros(0, 1, dtype=torch.float64)
    assert trace_segments(net, none, none, max_memory=1) == []
    pts = torch.tensor([[0.3]], dtype=torch.float64)
    assert len(boundary_distances(net, pts, max_memory=2_000)) == 1


def test_magnitude_in_row_chunks_is_bitwise_the_whole_reduction(monkeypatch):
    """`magnitude` reduces cache-sized blocks of rows on CPU: each row's largest |value| is the
    same number as one reduction over all rows, NaN and -0.0 included, whatever the block size."""
    from regionaudit.analysis import _common

    gen = torch.Generator().manual_seed(0)
    v = torch.randn(1001, 3, 7, 5, generator=gen, dtype=torch.float64) * torch.logspace(-300, 300, 1001, dtype=torch.float64)[:, None, None, None]
    v[17, 1, 2, 3], v[40] = float("nan"), -0.0
    flat = v.reshape(1001, -1)
    whole = torch.maximum(flat.amax(dim=1), flat.amin(dim=1).neg())
    for block in (1, 8 * 105, 8 * 105 * 64 + 8, 1 << 30):  # one row, a row, 64 rows and a bit, all rows
        monkeypatch.setattr(_common, "MAGNITUDE_CHUNK_BYTES", block)
        got = _common.magnitude(v)
        assert got.shape == (1001,) and torch.equal(got.isnan(), whole.isnan())
        assert torch.equal(got[~whole.isnan()], whole[~whole.isnan()])
