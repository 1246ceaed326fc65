"""Exact 2-D slices against independent computations: line arrangements, dense grids of forward
passes, brute-force argmax, and the geometry's own invariants."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import netfactory as nf
from regionaudit.analysis import polygons, slices
from regionaudit.analysis.slices import Plane, _pack, decision_boundary, partition_plane, predicted_classes
from regionaudit.bench.models import REALMODELS  # ../shared/realmodels beside the checkout
from regionaudit.ir import MaxPool, UnitKink
from regionaudit.planes import plane_through


def random_plane(network, seed: int, box=(-3.0, 3.0, -2.0, 2.5)) -> Plane:
    d = math.prod(network.input_shape)
    g = torch.Generator().manual_seed(seed)
    axes = torch.linalg.qr(torch.randn(d, 2, generator=g, dtype=torch.float64))[0].T.contiguous()
    origin = torch.randn(d, generator=g, dtype=torch.float64)
    return Plane(origin, axes, box)


def grid(plane: Plane, n: int) -> np.ndarray:
    """Cell centres of an n x n grid over the box, (n*n, 2) plane coordinates."""
    umin, umax, vmin, vmax = plane.box
    us = umin + (np.arange(n) + 0.5) / n * (umax - umin)
    vs = vmin + (np.arange(n) + 0.5) / n * (vmax - vmin)
    u, v = np.meshgrid(us, vs, indexing="ij")
    return np.stack([u.ravel(), v.ravel()], 1)


def grid_patterns(network, plane: Plane, uv: np.ndarray) -> np.ndarray:
    """Activation patterns by direct forward passes, packed as the partition packs them."""
    values = network.forward_all(plane.points(uv))
    parts = []
    for i in network.kink_ids:
        node = network.nodes[i]
        z = values[node.inputs[0]]
        if isinstance(node, UnitKink):
            parts.append(_pack(node.offsets(z) > 0))
        else:
            assert isinstance(node, MaxPool)
            parts.append(node.candidates(z).argmax(-1).to(torch.uint8))
    return torch.cat(parts, 1).numpy()


def inside(polys: list[np.ndarray], owner: np.ndarray, uv: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Whether each point uv[i] lies in polygon polys[owner[i]] (counter-clockwise, convex)."""
    ok = np.ones(len(uv), dtype=bool)
    for k in np.unique(owner):
        sel = owner == k
        p = polys[k]
        e = np.roll(p, -1, 0) - p
        q = uv[sel, None, :] - p[None]
        cross = e[None, :, 0] * q[..., 1] - e[None, :, 1] * q[..., 0]
        ok[sel] = (cross >= -tol).all(1)
    return ok


def line_arrangement_count(lines: np.ndarray, box) -> int:
    """Regions of lines a + b u + c v = 0 inside the box, in general position:
    1 + lines crossing the box + intersection points inside it."""
    umin, umax, vmin, vmax = box
    corners = np.array([[umin, vmin], [umax, vmin], [umax, vmax], [umin, vmax]])
    vals = lines[:, :1] + corners[:, 0] * lines[:, 1:2] + corners[:, 1] * lines[:, 2:3]
    cut = lines[(vals.min(1) < 0) & (vals.max(1) > 0)]
    points = 0
    for (a1, b1, c1), (a2, b2, c2) in itertools.combinations(cut, 2):
        det = b1 * c2 - b2 * c1
        u = (-a1 * c2 + a2 * c1) / det
        v = (-b1 * a2 + b2 * a1) / det
        points += umin < u < umax and vmin < v < vmax
    return 1 + len(cut) + points


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("in_dim", [2, 5])
def test_one_hidden_layer_count_is_the_line_arrangement(seed, in_dim):
    net = nf.mlp(seed, in_dim=in_dim, widths=(24,), n_out=3)
    plane = random_plane(net, seed) if in_dim > 2 else Plane(torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64), (-2.0, 2.0, -1.5, 2.5))
    w, b = net.nodes[1].weight, net.nodes[1].bias  # (in, 24), (24,)
    lines = torch.stack([plane.origin @ w + b, plane.axes[0] @ w, plane.axes[1] @ w], 1).numpy()
    part = partition_plane(net, plane)
    assert part.regions == line_arrangement_count(lines, plane.box)
    assert not part.truncated


@pytest.mark.parametrize("kind", nf.KINDS)
def test_every_grid_pattern_is_one_polygon_and_areas_match(kind):
    """Deeper nets (MLP, CNN, residual with BN, concat, LeakyReLU/PReLU, MaxPool): the pattern at every
    point of a fine grid is the pattern of exactly one polygon, which contains the point; polygon
    patterns are distinct; grid-cell fractions match areas; areas sum to the box."""
    net = nf.make(kind, 3)
    plane = random_plane(net, 3)
    part = partition_plane(net, plane)
    polys = part.vertices()
    areas = part.polygons.areas().numpy()
    assert abs(areas.sum() - plane.area) < 1e-9 * plane.area
    assert (areas > 0).all()
    pats = part.patterns.numpy()
    assert len(np.unique(pats, axis=0)) == len(pats), "two polygons share a pattern"
    index = {row.tobytes(): k for k, row in enumerate(pats)}
    n = 240
    uv = grid(plane, n)
    seen = grid_patterns(net, plane, uv)
    owner = np.array([index.get(row.tobytes(), -1) for row in seen])
    assert (owner >= 0).all(), "a grid pattern no polygon has"
    assert inside(polys, owner, uv).all()
    # grid-cell fractions: a polygon's cell count times the cell area is its area, up to the cells
    # its boundary crosses
    cell = plane.area / n**2
    h = math.hypot((plane.box[1] - plane.box[0]) / n, (plane.box[3] - plane.box[2]) / n)
    counts = np.bincount(owner, minlength=len(polys))
    perim = part.polygons.perimeters().numpy()
    assert (np.abs(counts * cell - areas) <= perim * h + 1e-12).all()
    big = areas > 50 * cell
    assert np.abs(counts[big] * cell / areas[big] - 1).max() < 0.15


@pytest.fixture(scope="module")
def new_kink_nets(tmp_path_factory):
    """Imported graphs with Clip (ReLU6, Hardtanh), HardSigmoid, Abs, Max / Min of tensors and
    ReduceMax / ReduceMin, as the importer writes them into the IR."""
    import onnx

    from conftest import make_model
    from regionaudit.importer import import_model
    from test_new_kinks_exact import clip_mlp, hard_sigmoid_abs_mlp, max_min_mlp, reduce_max_net

    folder = tmp_path_factory.mktemp("slice_kinks")
    out = {}
    for make in (clip_mlp, hard_sigmoid_abs_mlp, max_min_mlp, reduce_max_net):
        nodes, inits, shape = make(13)
        path = folder / f"{make.__name__}.onnx"
        onnx.save(make_model(nodes, shape, inits, 13), str(path))
        out[make.__name__] = import_model(path).network
    return out


@pytest.mark.parametrize("name", ["clip_mlp", "hard_sigmoid_abs_mlp", "max_min_mlp", "reduce_max_net"])
def test_every_grid_pattern_is_one_polygon_with_clip_abs_and_max_kinks(new_kink_nets, name):
    """Two breakpoints per unit (Clip), Abs, and windows over tensors (Max / Min, ReduceMax):
    every pattern of a fine grid is one polygon's, which holds the point, and areas fill the box."""
    net = new_kink_nets[name]
    plane = random_plane(net, 5, box=(-4.0, 4.0, -4.0, 4.0))
    part = partition_plane(net, plane)
    areas = part.polygons.areas().numpy()
    assert abs(areas.sum() - plane.area) < 1e-9 * plane.area
    pats = part.patterns.numpy()
    assert len(np.unique(pats, axis=0)) == len(pats), "two polygons share a pattern"
    index = {row.tobytes(): k for k, row in enumerate(pats)}
    uv = grid(plane, 200)
    owner = np.array([index.get(row.tobytes(), -1) for row in grid_patterns(net, plane, uv)])
    assert (owner >= 0).all(), "a grid pattern no polygon has"
    assert inside(part.vertices(), owner, uv).all()
    assert part.regions > 10
    assert all(part.boundary_length[name] > 0 for name in net.kink_names), part.boundary_length


def test_a_plane_that_cuts_no_unit_is_one_region():
    net = nf.mlp(0, in_dim=3, widths=(8, 8), n_out=2)
    for k in (1, 3):
        net.nodes[k].bias = net.nodes[k].bias + 100.0  # every unit on in the box
    part = partition_plane(net, random_plane(net, 0, box=(-1.0, 1.0, -1.0, 1.0)))
    assert part.regions == 1
    assert part.boundary_length == {name: 0.0 for name in net.kink_names}
    assert part.polygons.areas().item() == pytest.approx(4.0)


@pytest.mark.parametrize("seed,n_out", [(0, 4), (1, 4), (2, 4), (0, 300)])
def test_decision_boundary_of_a_one_layer_net_matches_brute_force(seed, n_out):
    """(With 300 classes, only those that can lead in a region are paired there.)"""
    net = nf.mlp(seed, in_dim=2, widths=(12,), n_out=n_out)
    plane = Plane(torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64), (-2.0, 2.0, -2.0, 2.0))
    part = partition_plane(net, plane)
    segs = decision_boundary(part).numpy()
    assert len(segs) > 0
    # every piece separates classes: just off its midpoint, the argmax differs on the two sides
    mid = segs.mean(1)
    d = segs[:, 1] - segs[:, 0]
    normal = np.stack([-d[:, 1], d[:, 0]], 1) / np.linalg.norm(d, axis=1, keepdims=True)
    left = net.forward(torch.from_numpy(mid + 1e-7 * normal)).argmax(1)
    right = net.forward(torch.from_numpy(mid - 1e-7 * normal)).argmax(1)
    assert (left != right).all()
    # every grid edge whose end points have different argmax crosses a piece; one whose end points
    # agree crosses none, or an even number (in and out again, or two near a junction of classes)
    n = 160
    uv = grid(plane, n).reshape(n, n, 2)
    cls = net.forward(torch.from_numpy(uv.reshape(-1, 2))).argmax(1).numpy().reshape(n, n)
    a = np.concatenate([uv[:-1].reshape(-1, 2), uv[:, :-1].reshape(-1, 2)])
    b = np.concatenate([uv[1:].reshape(-1, 2), uv[:, 1:].reshape(-1, 2)])
    change = np.concatenate([(cls[:-1] != cls[1:]).ravel(), (cls[:, :-1] != cls[:, 1:]).ravel()])
    hits = np.zeros(len(a), dtype=int)
    for p, q in segs:
        hits += _crosses(a, b, p, q)
    assert (hits[change] >= 1).all()
    assert (hits[~change] % 2 == 0).all()
    # the class of each region is the argmax at its centroid
    c = part.polygons.centroids().numpy() + np.asarray(part.centre)
    assert (predicted_classes(part).numpy() == net.forward(torch.from_numpy(c)).argmax(1).numpy()).all()


def test_decision_boundary_is_the_same_in_chunks_and_with_every_class_paired(monkeypatch):
    """Leaving out the classes that cannot lead in a region, and working a few regions at a
    time, change no piece: the same segments, bit for bit and in order."""
    net = nf.mlp(3, in_dim=2, widths=(16, 12), n_out=40)
    plane = Plane(torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64), (-3.0, 3.0, -3.0, 3.0))
    part = partition_plane(net, plane)
    segs = decision_boundary(part)
    classes = predicted_classes(part)
    assert len(segs) > 20
    monkeypatch.setattr(slices, "BOUNDARY_CHUNK_BYTES", 4096)
    assert torch.equal(decision_boundary(part), segs) and torch.equal(predicted_classes(part), classes)

    def every_class(cand, polys, floor):
        return cand, torch.ones(cand.shape[:2], dtype=torch.bool)

    monkeypatch.setattr(slices, "_contenders", every_class)
    assert torch.equal(decision_boundary(part), segs)


def _crosses(a: np.ndarray, b: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Whether segments a[i]-b[i] properly cross segment p-q."""

    def orient(x, y, z):
        return np.sign((y[..., 0] - x[..., 0]) * (z[..., 1] - x[..., 1]) - (y[..., 1] - x[..., 1]) * (z[..., 0] - x[..., 0]))

    return ((orient(a, b, p) * orient(a, b, q) < 0) & (orient(p, q, a) * orient(p, q, b) < 0)).astype(int)


def test_per_layer_lengths_add_up_to_the_labelled_edges():
    net = nf.make("resnet", 1)
    plane = random_plane(net, 1)
    part = partition_plane(net, plane)
    edges, labels = part.polygons.edges()
    lengths = torch.linalg.vector_norm(edges[:, 1] - edges[:, 0], dim=-1)
    for i, name in zip(net.kink_ids, net.kink_names):
        # every interior edge is seen from both sides
        assert float(lengths[labels == i].sum()) / 2 == pytest.approx(part.boundary_length[name], rel=1e-9, abs=1e-12)
    total = float(part.polygons.perimeters().sum())
    box_perimeter = 2 * (plane.box[1] - plane.box[0] + plane.box[3] - plane.box[2])
    assert sum(part.boundary_length.values()) == pytest.approx((total - box_perimeter) / 2, rel=1e-9)


def test_chunks_and_truncation():
    net = nf.make("cnn_max", 2)
    plane = random_plane(net, 2)
    full = partition_plane(net, plane)
    small = partition_plane(net, plane, max_memory=1 << 16)  # many chunks
    assert small.regions == full.regions
    assert {r.tobytes() for r in small.patterns.numpy()} == {r.tobytes() for r in full.patterns.numpy()}
    cut = partition_plane(net, plane, max_regions=50)
    assert cut.truncated and 50 <= cut.regions < full.regions
    assert cut.polygons.areas().sum().item() == pytest.approx(plane.area)


@pytest.mark.parametrize("kind,max_regions", [("cnn_max", 40), ("mlp_max", 40), ("resnet", 40), ("cnn_concat", 25)])
def test_batches_after_the_partition_stopped_change_no_number(kind, max_regions, monkeypatch):
    """Once --max-regions has stopped the partition, the polygons go through the remaining nodes
    in smaller batches (`STOPPED_BATCH_BYTES`): the same polygons, outputs, patterns, rounding
    scales and boundary lengths, bit for bit and in the same order, as in batches of the budget."""
    net = nf.make(kind, 3)
    plane = random_plane(net, 3)
    batches = []
    add = slices._Finished.add
    monkeypatch.setattr(slices._Finished, "add", lambda self, batch, output: batches.append(len(batch.polys)) or add(self, batch, output))
    whole = partition_plane(net, plane, max_regions=max_regions)
    n_whole = len(batches)
    monkeypatch.setattr(slices, "STOPPED_BATCH_BYTES", 1)  # batches of 16 polygons
    small = partition_plane(net, plane, max_regions=max_regions)
    assert whole.truncated and small.truncated
    assert len(batches) - n_whole > n_whole and max(batches[n_whole:]) <= 16  # smaller batches ran
    assert None in whole.boundary_length.values()  # (a kink node after the stop split nothing)
    for a, b in [(whole.polygons.verts, small.polygons.verts), (whole.polygons.counts, small.polygons.counts),
                 (whole.polygons.labels, small.polygons.labels), (whole.outputs, small.outputs),
                 (whole.patterns, small.patterns), (whole.mag, small.mag)]:
        assert a.shape == b.shape and torch.equal(a, b)
    assert whole.boundary_length == small.boundary_length


@pytest.mark.parametrize("kind", ["cnn_max", "mlp_max", "resnet"])
@pytest.mark.parametrize("max_regions", [None, 40])
def test_every_polygon_outputs_the_network_at_its_vertex_mean(kind, max_regions):
    """Each polygon's affine output, read at the mean of its vertices, is a forward pass there:
    in a full partition, where the polygon is a region, and in one stopped at --max-regions,
    whose unsplit polygons take each unit's side and each window's leader at that point (before,
    such a polygon took the first candidate of a window that cut it: with padding, -inf)."""
    net = nf.make(kind, 6)
    plane = random_plane(net, 6)
    part = partition_plane(net, plane, max_regions=max_regions)
    assert part.truncated == (max_regions is not None)
    polys = part.polygons
    valid = polys.valid()
    mean = (polys.verts * valid[..., None]).sum(1) / polys.counts[:, None]  # from the box's centre
    assert torch.isfinite(part.outputs).all()
    at_mean = part.outputs[:, 0] + mean[:, :1] * part.outputs[:, 1] + mean[:, 1:] * part.outputs[:, 2]
    forward = net.forward_all(plane.points(mean + torch.tensor(part.centre, dtype=torch.float64)))[net.output]
    forward = forward.reshape(len(polys), -1)
    assert torch.allclose(at_mean, forward, rtol=1e-9, atol=1e-9 * float(forward.abs().max()))


def test_float32_counts_match_float64_on_a_small_net():
    net = nf.make("mlp", 4)
    plane = random_plane(net, 4)
    a = partition_plane(net, plane).regions
    b = partition_plane(net.to(torch.float32), plane).regions
    assert a == b


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu():
    net = nf.make("cnn_concat", 0)
    plane = random_plane(net, 0)
    cpu = partition_plane(net, plane)
    gpu = partition_plane(nf.make("cnn_concat", 0).to(device="cuda"), plane)
    assert gpu.regions == cpu.regions
    assert {r.tobytes() for r in gpu.patterns.cpu().numpy()} == {r.tobytes() for r in cpu.patterns.numpy()}


def test_plane_through_three_points_is_the_circumcentre_square():
    rng = np.random.default_rng(0)
    pts = rng.standard_normal((3, 6))
    plane, uv, half = plane_through(pts, 1.25)
    e = plane.axes.numpy()
    assert np.allclose(e @ e.T, np.eye(2))
    assert np.allclose(e[0], (pts[1] - pts[0]) / np.linalg.norm(pts[1] - pts[0]))
    back = plane.points(uv).numpy()
    assert np.allclose(back, pts)  # the points lie on the plane, at their coordinates
    radii = np.linalg.norm(uv, axis=1)
    assert np.allclose(radii, radii[0])  # the origin is the circumcentre
    assert half == pytest.approx(1.25 * radii[0])
    assert plane.box == (-half, half, -half, half)


def crossed(polys: list[np.ndarray], a: np.ndarray, b: np.ndarray) -> int:
    """How many polygons the segment a -> b passes through over a positive length."""
    d = b - a
    count = 0
    for p in polys:
        e = np.roll(p, -1, 0) - p
        g0 = e[:, 0] * (a[1] - p[:, 1]) - e[:, 1] * (a[0] - p[:, 0])  # inside: g0 + t g1 >= 0
        g1 = e[:, 0] * d[1] - e[:, 1] * d[0]
        if ((g1 == 0) & (g0 < 0)).any():
            continue
        t = -g0 / np.where(g1 == 0, 1.0, g1)
        lo = max(0.0, t[g1 > 0].max(initial=0.0))
        hi = min(1.0, t[g1 < 0].min(initial=1.0))
        count += hi - lo > 1e-12
    return count


def _agrees_with_the_1d_analysis(net, plane: Plane, seed: int) -> None:
    from regionaudit.analysis.density import trace_segments

    part = partition_plane(net, plane)
    polys = part.vertices()
    rng = np.random.default_rng(seed)
    umin, umax, vmin, vmax = plane.box
    a = np.stack([rng.uniform(umin, umax, 6), rng.uniform(vmin, vmax, 6)], 1)
    b = np.stack([rng.uniform(umin, umax, 6), rng.uniform(vmin, vmax, 6)], 1)
    traces = trace_segments(net, plane.points(a), plane.points(b))
    assert [crossed(polys, p, q) for p, q in zip(a, b)] == [t.regions for t in traces]


@pytest.mark.parametrize("kind", ["cnn_max", "resnet", "cnn_concat", "prelu"])
def test_segments_in_the_plane_cross_as_many_regions_as_the_1d_analysis_counts(kind):
    net = nf.make(kind, 5)
    _agrees_with_the_1d_analysis(net, random_plane(net, 5), 5)


@pytest.mark.skipif(not (REALMODELS / "tllbench_n2_N8_inst0_0.onnx").is_file(), reason="../shared/realmodels is absent")
def test_two_level_lattice_net_whose_zero_units_are_rounding_noise():
    """Units that are zero in theory come out as +-1e-16 noise: the rounding floor keeps them from
    cutting, and the regions agree with the 1-D analysis along segments."""
    from regionaudit.importer import import_model

    net = import_model(str(REALMODELS / "tllbench_n2_N8_inst0_0.onnx")).network
    plane = Plane(torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64), (-2.0, 2.0, -2.0, 2.0))
    _agrees_with_the_1d_analysis(net, plane, 0)


@pytest.mark.parametrize("kind,max_regions,dtype", [
    ("mlp", None, torch.float64), ("leaky", None, torch.float64), ("resnet", None, torch.float64),
    ("cnn_max", 60, torch.float64), ("mlp", None, torch.float32), ("resnet", None, torch.float32)])
def test_bounding_circles_skip_only_pieces_a_line_cannot_cut(kind, max_regions, dtype, monkeypatch):
    """`halve_rounds` skips a piece whose bounding circle a line misses: with that test on from
    the first piece, and off, every piece is the same, in the same order (which decides what a
    partition stopped at --max-regions keeps), and the test read fewer vertices; in float32
    too, whose rounding the margin must cover."""
    net = nf.make(kind, 4).to(dtype)
    plane = random_plane(net, 4)
    monkeypatch.setattr(polygons, "CIRCLES_FROM", 0)
    monkeypatch.setattr(polygons, "LINES_PER_POLYGON", 0)
    on = partition_plane(net, plane, max_regions=max_regions)
    monkeypatch.setattr(polygons, "LINES_PER_POLYGON", 10**9)
    off = partition_plane(net, plane, max_regions=max_regions)
    assert on.regions == off.regions > 20 and on.truncated == (max_regions is not None)
    for a, b in [(on.polygons.verts, off.polygons.verts), (on.polygons.labels, off.polygons.labels),
                 (on.patterns, off.patterns), (on.outputs, off.outputs)]:
        assert torch.equal(a, b)
    assert on.vertices_processed < off.vertices_processed


def test_a_tiny_polygon_far_from_the_box_centre_keeps_its_area_and_centroid():
    """A 2e-19 triangle at (1.19, 1.07) from the centre: its shoelace in box coordinates cancelled
    to 0 (a slice's `area.min` was 0.0 for a real region); taken from its first vertex it keeps
    its digits. Checked against the exact rational area of the same float vertices."""
    from fractions import Fraction

    offsets = [(0.0, 0.0), (4e-10, 7e-10), (-4e-10, 3e-10)]
    verts = torch.tensor([[[1.1881492116857075 + du, 1.067603433296017 + dv] for du, dv in offsets]], dtype=torch.float64)
    polys = polygons.Polygons(verts, torch.tensor([3]), torch.zeros(1, 3, dtype=torch.long))
    p = [(Fraction(float(x)), Fraction(float(y))) for x, y in verts[0].tolist()]
    exact = sum(p[k][0] * p[(k + 1) % 3][1] - p[(k + 1) % 3][0] * p[k][1] for k in range(3)) / 2
    assert exact > 0
    assert float(polys.areas()[0]) == pytest.approx(float(exact), rel=1e-6)
    centroid = [sum(q[i] for q in p) / 3 for i in range(2)]  # a triangle's centroid is its vertex mean
    assert polys.centroids()[0].tolist() == pytest.approx([float(c) for c in centroid], abs=1e-15)


@pytest.mark.parametrize("slope", [0.0, 0.1, -1.0])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_a_pattern_applied_in_place_is_the_selection_to_the_bit(slope, dtype):
    """`with_pattern(inplace=True)` writes z x 1 or z x slope into z: the same numbers as the
    selection, signed zeros included, for one pattern shared by a slice's three coefficients."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(5, 3, 2, 4, 4, generator=g, dtype=torch.float64).to(dtype)
    z[0, :, 0, 0] = 0.0
    z[1, :, 0, 0] = -0.0
    on = torch.rand(5, 32, generator=g) > 0.5
    node = nf.Builder((2, 4, 4), 0)
    node = node.nodes[node.relu(0, slope)]
    node.convert(dtype, torch.device("cpu"))
    expected = node.with_pattern(z, on)
    mine = z.clone()
    out = node.with_pattern(mine, on, inplace=True)
    assert out.data_ptr() == mine.data_ptr()
    assert torch.equal(out.view(torch.int64 if dtype == torch.float64 else torch.int32),
                       expected.view(torch.int64 if dtype == torch.float64 else torch.int32))


def _reread_net(seed: int):
    """Plain residual sums (coefficients 1) whose first term is read again after the sum, and
    ReLUs whose input a later sum reads: the values a slice may not overwrite, beside ones it may."""
    g = nf.Builder((3,), seed)
    x = g.relu(g.dense(0, 8))
    z = g.dense(x, 8)
    y = g.relu(z)  # z is read again below
    s = g.sum(x, g.dense(y, 8))  # x is read again below
    t = g.relu(g.sum(s, z))  # s: read last here
    u = g.relu(g.sum(t, x))
    return g.network(g.dense(u, 2))


def test_values_overwritten_in_place_are_only_those_read_nowhere_after(monkeypatch):
    """The slice adds a plain sum into its first term and rectifies a ReLU's input in place only
    where that value is the children's own copy and read last there: every polygon's output is
    still the network's at its vertex mean, and both in-place paths ran (with others refused)."""
    from regionaudit.ir import LeakyRelu, Sum

    taken = {"sum": [], "relu": []}
    sum_inplace, relu_pattern = Sum.forward_inplace, LeakyRelu.with_pattern

    def spy_sum(self, xs):
        out = sum_inplace(self, xs)
        taken["sum"].append((self.name, out.data_ptr() == xs[0].data_ptr()))
        return out

    def spy_relu(self, z, on, linear=False, inplace=False):
        taken["relu"].append((self.name, inplace))
        return relu_pattern(self, z, on, linear, inplace)

    monkeypatch.setattr(Sum, "forward_inplace", spy_sum)
    monkeypatch.setattr(LeakyRelu, "with_pattern", spy_relu)
    net = _reread_net(3)
    plane = random_plane(net, 3)
    part = partition_plane(net, plane)
    assert part.regions > 50
    polys = part.polygons
    mean = (polys.verts * polys.valid()[..., None]).sum(1) / polys.counts[:, None]
    at_mean = part.outputs[:, 0] + mean[:, :1] * part.outputs[:, 1] + mean[:, 1:] * part.outputs[:, 2]
    forward = net.forward_all(plane.points(mean + torch.tensor(part.centre, dtype=torch.float64)))[net.output]
    assert torch.allclose(at_mean, forward.reshape(len(polys), -1), rtol=1e-9, atol=1e-9 * float(forward.abs().max()))
    names = {i: n.name for i, n in enumerate(net.nodes)}
    sums = {name for name, done in taken["sum"] if done}
    relus = {name for name, inplace in taken["relu"] if inplace}
    assert names[6] not in sums and {names[7], names[9]} <= sums  # (x is read after the first sum)
    assert names[4] not in relus and {names[8], names[10]} <= relus  # (z is read after its ReLU)


def test_finished_polygons_are_the_batches_concatenated_and_padded():
    """`_Finished` copies each batch into its growing buffers: the same rows as concatenating
    the batches (polygons padded as `Polygons.cat` pads them), however the widths and sizes come,
    and no batch tensor is kept."""
    from regionaudit.analysis.polygons import Polygons

    g = torch.Generator().manual_seed(0)
    batches = []
    for p, width in [(3, 4), (1, 6), (0, 5), (700, 3), (2, 6), (1500, 5)]:
        counts = torch.randint(3, width + 1, (p,), generator=g)
        polys = Polygons(torch.randn(p, width, 2, generator=g, dtype=torch.float64), counts,
                         torch.randint(0, 9, (p, width), generator=g))
        values = {7: torch.randn(p, 3, 4, generator=g, dtype=torch.float64)}
        patterns = [torch.randint(0, 255, (p, n), generator=g, dtype=torch.uint8) for n in (2, 1)]
        batches.append(slices._Batch(polys, values, torch.rand(p, generator=g, dtype=torch.float64), patterns))
    done = slices._Finished()
    for b in batches:
        done.add(b, 7)
    nonempty = [b for b in batches if len(b.polys)]
    expected = Polygons.cat([b.polys for b in nonempty])
    got = done.polygons()
    assert torch.equal(got.verts, expected.verts) and torch.equal(got.labels, expected.labels)
    assert torch.equal(got.counts, expected.counts)
    assert torch.equal(done["outputs"], torch.cat([b.values[7] for b in nonempty]))
    assert torch.equal(done["patterns"], torch.cat([torch.cat(b.patterns, 1) for b in nonempty]))
    assert torch.equal(done["mag"], torch.cat([b.mag for b in nonempty]))
    kept = {t.untyped_storage().data_ptr() for t in done.buffers.values()}
    for b in batches:
        for t in (b.polys.verts, b.polys.counts, b.polys.labels, b.values[7], b.mag, *b.patterns):
            assert t.numel() == 0 or t.untyped_storage().data_ptr() not in kept
