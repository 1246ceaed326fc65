"""Translation loops: a loop crosses the boundaries of its edges and those at its vertices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import export_with_batch_axis
from regionaudit.analysis.density import trace_segments
from regionaudit.analysis.loops import vertex_crossings
from regionaudit.api import audit
from regionaudit.importer import import_model
from regionaudit.probes import translation_loops


class _Net(nn.Module):
    """Zero padding, then a max pool: at a whole-pixel shift, units cross and pool candidates
    swap exactly at the loop's vertex."""

    def __init__(self):
        super().__init__()
        self.c, self.c2, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3), nn.Linear(16, 3)

    def forward(self, x):
        return self.fc(F.leaky_relu(self.c2(F.max_pool2d(F.relu(self.c(x)), 2)), 0.25).flatten(1))

    def pattern(self, x: np.ndarray) -> torch.Tensor:
        """ReLU signs, max-pool winners and LeakyReLU signs at x, from torch's own layers."""
        z1 = self.c(torch.from_numpy(x)[None])
        pooled, winners = F.max_pool2d(F.relu(z1), 2, return_indices=True)
        return torch.cat([(z1 > 0).flatten(), winners.flatten(), (self.c2(pooled) > 0).flatten()]).long()


def test_a_boundary_crossed_at_a_loop_vertex_is_counted_once(tmp_path):
    """Each edge, traced as a segment, leaves out a crossing at its end points; the loop's count
    is the edges' knots plus the vertices where torch's own pattern differs just before and just
    after the vertex (here four, at the whole-pixel shifts)."""
    torch.manual_seed(0)
    net = _Net().eval()
    export_with_batch_axis(net, (1, 8, 8), tmp_path / "net.onnx")
    net = net.double()
    data = np.random.default_rng(3).uniform(0, 1, (3, 1, 8, 8))
    np.save(tmp_path / "data.npy", data)
    common = dict(slice=False, init_reference=0, max_points=0)
    loop = audit(tmp_path / "net.onnx", data=tmp_path / "data.npy", loops=1, pairs=1, **common).density.paths[0]
    vertices = translation_loops(data, 1, 2.0, 16, "chw")[0].vertices
    edges = np.stack([vertices, np.roll(vertices, -1, 0)], 1)
    np.save(tmp_path / "edges.npy", edges)
    segments = audit(tmp_path / "net.onnx", segments=tmp_path / "edges.npy", **common).density.segments
    with torch.no_grad():
        turns = sum(
            not torch.equal(net.pattern(a + (1 - 1e-9) * (b - a)), net.pattern(c + 1e-9 * (d - c)))
            for (a, b), (c, d) in zip(np.roll(edges, 1, 0), edges)
        )
    assert turns == 4
    assert loop.regions == sum(s.regions - 1 for s in segments) + turns
    assert sum(loop.knots_per_layer.values()) == loop.regions
    # vertices read a few at a time within a small --max-memory (before, all at once whatever the budget)
    imported = import_model(tmp_path / "net.onnx").network
    edge_traces = trace_segments(imported, torch.from_numpy(edges[:, 0]), torch.from_numpy(edges[:, 1]))
    whole = vertex_crossings(imported, edges[:, 0], edges[:, 1], edge_traces)
    per_vertex = 2 * 8 * sum(int(np.prod(node.shape)) for node in imported.nodes)
    assert vertex_crossings(imported, edges[:, 0], edges[:, 1], edge_traces, max_memory=3 * per_vertex) == whole
    assert sum(name is not None for name in whole) == turns


@pytest.mark.parametrize("steps", [3, 16])
def test_a_loop_without_vertex_crossings_counts_its_edges(tmp_path, steps):
    """Off the whole-pixel shifts (a radius of 2.7 pixels, no zero padding), nothing crosses at
    a vertex: the loop's count is its edges' knots."""
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6 * 6, 2)).eval()
    export_with_batch_axis(net, (1, 8, 8), tmp_path / "net.onnx")
    data = np.random.default_rng(4).uniform(0, 8, (3, 1, 8, 8))
    np.save(tmp_path / "data.npy", data)
    common = dict(slice=False, init_reference=0, max_points=0)
    loop = audit(tmp_path / "net.onnx", data=tmp_path / "data.npy", loops=1, pairs=1, loop_radius=2.7,
                 loop_steps=steps, **common).density.paths[0]
    vertices = translation_loops(data, 1, 2.7, steps, "chw")[0].vertices
    np.save(tmp_path / "edges.npy", np.stack([vertices, np.roll(vertices, -1, 0)], 1))
    segments = audit(tmp_path / "net.onnx", segments=tmp_path / "edges.npy", **common).density.segments
    assert loop.regions == sum(s.regions - 1 for s in segments) > 2


def test_no_vertex_crossing_is_credited_after_an_edge_that_max_knots_stopped(tmp_path):
    """A stopped edge's last kept piece spans regions it never traced: comparing its pattern
    with the next edge's would credit nearly every vertex to some node."""
    from pathlib import Path

    cnn = Path(__file__).resolve().parents[1] / "sample_models" / "digits_cnn.onnx"
    data = Path(__file__).resolve().parents[1] / "sample_models" / "digits_test.npy"
    common = dict(data=data, loops=1, pairs=1, slice=False, init_reference=0, max_points=0)
    full = audit(cnn, **common).density.paths[0]
    cut = audit(cnn, max_knots=1, **common).density.paths[0]
    assert cut.truncated and not full.truncated
    assert cut.regions == max(1, sum(cut.knots_per_layer.values())) <= 16 < full.regions


def test_a_unit_zero_along_an_edge_crosses_nothing_where_it_turns_on(tmp_path):
    """Without biases, a unit whose receptive field is all zeros along an edge lies on its own
    boundary there, in the closure of the region the next edge enters: turning on at the vertex
    crosses nothing. The loop counts its edges' knots and the vertices where a unit has strictly
    opposite signs on either side, not every vertex where the z > 0 pattern differs."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(128, 6),
                        nn.ReLU(), nn.Linear(6, 3)).eval()
    with torch.no_grad():
        net[0].weight.abs_()  # z >= 0 on images >= 0: the conv's units only ever turn on or off at zero
    export_with_batch_axis(net, (1, 8, 8), tmp_path / "net.onnx")
    rows = np.zeros((2, 1, 8, 8))
    rows[:, 0, 2:6, 2:6] = np.random.default_rng(5).uniform(0.5, 1.0, (2, 4, 4))
    np.save(tmp_path / "data.npy", rows)
    # whole-pixel shifts by one pixel (radius 1, 4 steps): the image moved right, down, left, up
    vertices = np.stack([np.roll(rows[0], s, axis=ax) for s, ax in ((1, 2), (1, 1), (-1, 2), (-1, 1))])
    edges = np.stack([vertices, np.roll(vertices, -1, 0)], 1)
    np.save(tmp_path / "edges.npy", edges)
    common = dict(slice=False, init_reference=0, max_points=0)
    loop = audit(tmp_path / "net.onnx", data=tmp_path / "data.npy", loops=1, pairs=1, loop_radius=1.0, loop_steps=4,
                 **common).density.paths[0]
    segments = audit(tmp_path / "net.onnx", segments=tmp_path / "edges.npy", **common).density.segments
    net = net.double()

    def units(x: np.ndarray) -> torch.Tensor:
        z1 = net[0](torch.from_numpy(x)[None])
        return torch.cat([z1.flatten(), net[3](torch.relu(z1).flatten(1)).flatten()])

    strict = changed = 0
    with torch.no_grad():
        for (a, b), (c, d) in zip(np.roll(edges, 1, 0), edges):
            before, after = units(a + (1 - 1e-6) * (b - a)), units(c + 1e-6 * (d - c))
            tol = 1e-12 * float(max(before.abs().max(), after.abs().max()))
            strict += bool(((before > tol) & (after < -tol) | (before < -tol) & (after > tol)).any())
            changed += not torch.equal(before > tol, after > tol)
    assert strict == 0 and changed == 4
    assert loop.regions == sum(s.regions - 1 for s in segments) > 1
