"""Synthetic `AuditResult`s for the report tests (no model is run).

`sample_result()` looks like a real audit of a small MLP on data; `empty_result()` has no
segments, points or summaries; `nasty_result()` carries hostile names and notes;
`truncated_result()` has segments that reached --max-knots, with the note the audit adds.
"""

from __future__ import annotations

import numpy as np

from regionaudit.assemble import truncation_notes
from regionaudit.analysis.stats import spearman, summary
from regionaudit.slice_result import SliceResult
from regionaudit.result import (
    AuditResult,
    CompareResult,
    Density,
    Deviation,
    Distance,
    GateResult,
    ModelInfo,
    Paired,
    PairedMeasure,
    PathDensity,
    PointDistance,
    SegmentDensity,
    SegmentDeviation,
)


def summarize(values) -> dict | None:
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    if arr.size == 0:
        return None
    return {
        "count": int(arr.size),
        "mean": float(arr.mean()),
        "median": float(np.median(arr)),
        "p10": float(np.percentile(arr, 10)),
        "p90": float(np.percentile(arr, 90)),
        "min": float(arr.min()),
        "max": float(arr.max()),
    }


def _nodes(layer_names: list[str], widths: list[int], in_dim: int) -> list[dict]:
    nodes = [{"id": 0, "kind": "input", "name": "input", "op_type": "", "shape": [in_dim], "units": 0, "params": 0, "detail": ""}]
    prev = in_dim
    i = 1
    for name, w in zip(layer_names, widths):
        nodes.append(
            {"id": i, "kind": "matmul", "name": f"{name}/MatMul", "op_type": "Gemm", "shape": [w], "units": 0,
             "params": prev * w + w, "detail": f"{prev}→{w}, bias"}
        )
        i += 1
        nodes.append({"id": i, "kind": "relu", "name": name, "op_type": "Relu", "shape": [w], "units": w, "params": 0, "detail": "ReLU"})
        i += 1
        prev = w
    nodes.append({"id": i, "kind": "matmul", "name": "logits", "op_type": "Gemm", "shape": [10], "units": 0, "params": prev * 10 + 10, "detail": f"{prev}→10, bias"})
    return nodes


def sample_result(
    n_segments: int = 50,
    n_points: int = 60,
    seed: int = 0,
    layer_names: list[str] | None = None,
    with_slice: bool = True,
    with_paths: bool = True,
    with_gates: bool = True,
    scale: float = 1.0,
) -> AuditResult:
    rng = np.random.default_rng(seed)
    layer_names = layer_names or ["fc1/Relu", "fc2/Relu", "fc3/Relu"]
    widths = [128, 64, 32][: len(layer_names)] + [32] * max(0, len(layer_names) - 3)
    neurons = sum(widths)
    nodes = _nodes(layer_names, widths, 784)
    params = sum(n["params"] for n in nodes)

    segs, devs = [], []
    for _ in range(n_segments):
        regions = int(rng.poisson(37 * scale)) + 1
        length = float(rng.uniform(6, 14))
        split = rng.multinomial(regions - 1, [0.5, 0.3, 0.2][: len(layer_names)] if len(layer_names) == 3 else np.full(len(layer_names), 1 / len(layer_names)))
        segs.append(SegmentDensity(regions, length, regions / length, {k: int(v) for k, v in zip(layer_names, split)}))
        per_output = list(np.abs(rng.normal(0.12 * regions / 37, 0.05, 10)))
        devs.append(SegmentDeviation([float(x) for x in per_output], float(np.linalg.norm(per_output))))
    knots = {k: sum(s.knots_per_layer.get(k, 0) for s in segs) for k in layer_names}

    points = []
    for _ in range(n_points):
        dist = float(np.exp(rng.normal(np.log(0.01), 1.0)))
        points.append(PointDistance(dist, str(rng.choice(layer_names)), int(rng.integers(0, 64)), dist * neurons))

    paths, path_devs = [], []
    if with_paths:
        for _ in range(6):
            r = int(rng.poisson(60)) + 1
            length = float(rng.uniform(20, 30))
            paths.append(PathDensity(r, length, r / length, {layer_names[0]: r}, edges=16))
            path_devs.append(SegmentDeviation([0.3, 0.2], float(np.hypot(0.3, 0.2))))

    slice_ = None
    if with_slice:
        slice_ = _grid_slice(rng)

    gates = []
    if with_gates:
        med = float(np.median([s.regions for s in segs])) if segs else None
        gates = [
            GateResult("density.summary.median > 200", med, True, ""),
            GateResult("deviation.spearman_density < 0.2", 0.64, False, "0.64 is not < 0.2"),
        ]

    result = AuditResult(
        model=ModelInfo(
            path="models/mnist_mlp.onnx",
            sha256="3f7a9c0e5b1d2468ace013579bdf2468ace013579bdf2468ace013579bdf2468",
            input_shape=[784],
            output_shape=[10],
            neurons=neurons,
            maxpool_windows=0,
            params=params,
            macs=params - sum(widths) - 10,
            opset=17,
            producer="pytorch 2.3.0",
            input_name="input",
            output_name="logits",
            nodes=nodes,
            notes=["Trailing Softmax stripped: the analysis is on logits."],
            validation={"max_abs_err": 2.3e-7, "max_rel_err": 4.1e-8, "inputs": 8, "reference": "onnxruntime"},
        ),
        settings={
            "seed": 0,
            "device": "cpu",
            "dtype": "float64",
            "data": "data/mnist_test_1k.npy",
            "data_sha256": "9b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c",
            "pairs": n_segments,
            "max_points": n_points,
            "loops": len(paths),
            "max_knots": 1_000_000,
            "synthetic": False,
        },
        density=Density(
            segments=segs,
            paths=paths,
            summary=summarize([s.regions for s in segs]),
            per_length=summarize([s.density for s in segs]),
            regions_per_neuron=summarize([s.regions / neurons for s in segs]),
            path_summary=summarize([p.regions for p in paths]),
            knots_per_layer=knots,
        ),
        deviation=Deviation(
            segments=devs,
            paths=path_devs,
            summary=summarize([d.norm for d in devs]),
            path_summary=summarize([d.norm for d in path_devs]),
            spearman_density=spearman([s.density for s in segs], [d.norm for d in devs]),
        ),
        distance=Distance(
            points=points,
            summary=summarize([p.distance for p in points]),
            scaled_summary=summarize([p.scaled for p in points]),
        ),
        notes=[],
        slice=slice_,
        gates=gates,
        timing={"import": 0.412, "density": 3.21, "deviation": 0.08, "distance": 1.7, "slice": 0.9, "total": 6.32},
    )
    if segs:
        _add_reference_frame(result, rng, layer_names)
    return result


def _add_reference_frame(result: AuditResult, rng, layer_names: list[str]) -> None:
    """A fake init reference (two seeds on the first 10 segments and 5 points) and a segment profile."""
    from regionaudit.reference import ratio_to_init
    from regionaudit.result import reference_cut_short

    d, dist, neurons = result.density, result.distance, result.model.neurons
    m, p = min(10, len(d.segments)), min(5, len(dist.points))
    seeds = []
    for k in range(2):
        regions = [int(rng.poisson(20)) + 1 for _ in range(m)]
        dens = [r / s.length for r, s in zip(regions, d.segments)]
        devs = [float(rng.uniform(0.01, 0.05)) for _ in range(m)]
        dists = [float(np.exp(rng.normal(np.log(0.03), 0.5))) for _ in range(p)]
        seeds.append({
            "seed": [0, 13, k],
            "segments": {"regions": regions, "density": dens, "deviation": devs, "truncated": [False] * m},
            "points": {"distance": dists, "nearest_node": [layer_names[i % len(layer_names)] for i in range(p)]},
            "knots_per_layer": {layer_names[0]: sum(regions) - m},
            "density": {"summary": summarize(regions), "per_length": summarize(dens), "regions_per_neuron": summarize([r / neurons for r in regions])},
            "deviation": {"summary": summarize(devs)},
            "distance": {"summary": summarize(dists), "scaled_summary": summarize([x * neurons for x in dists])},
        })
    pool = lambda key, sub: [x for s in seeds for x in s[key][sub]]  # noqa: E731
    ref = {
        "copies": 2, "segments": m, "points": p, "recipe": {"weights": "He-normal"}, "per_seed": seeds,
        "pooled": {
            "density": {"summary": summarize(pool("segments", "regions")), "per_length": summarize(pool("segments", "density")),
                        "regions_per_neuron": summarize([r / neurons for r in pool("segments", "regions")])},
            "deviation": {"summary": summarize(pool("segments", "deviation"))},
            "distance": {"summary": summarize(pool("points", "distance")),
                         "scaled_summary": summarize([x * neurons for x in pool("points", "distance")])},
        },
        "profile": None,
    }
    result.reference = {"init": ref}
    d.ratio_to_init = summarize(ratio_to_init([s.regions for s in d.segments], ref, reference_cut_short(ref, [s.truncated for s in d.segments])))
    seg = d.segments[0]
    t = sorted(rng.uniform(0, 1, seg.regions - 1).tolist())
    d.profile = {
        "segment": 0, "t": [0.0] + t + [1.0], "knot_layers": [layer_names[i % len(layer_names)] for i in range(len(t))],
        "outputs": [3, 1], "logits": [[float(x) for x in np.cumsum(rng.normal(size=len(t) + 2))] for _ in range(2)],
    }


def _grid_slice(rng) -> SliceResult:
    """A fake partition: a jittered grid of convex quadrilaterals cut by a few lines (good enough to draw)."""
    n = 7
    xs = np.linspace(-1, 1, n + 1)
    jitter = rng.uniform(-0.08, 0.08, (n + 1, n + 1, 2))
    jitter[[0, -1], :, 0] = 0
    jitter[:, [0, -1], 1] = 0
    grid = np.stack(np.meshgrid(xs, xs, indexing="ij"), axis=-1) + jitter
    polys = []
    for i in range(n):
        for j in range(n):
            quad = [grid[i, j], grid[i + 1, j], grid[i + 1, j + 1], grid[i, j + 1]]
            polys.append([[float(a), float(b)] for a, b in quad])
    areas = [0.5 * abs(sum(p[k][0] * p[(k + 1) % 4][1] - p[(k + 1) % 4][0] * p[k][1] for k in range(4))) for p in polys]
    classes = [int(p[0][0] > 0) for p in polys]
    return SliceResult(
        regions=len(polys),
        truncated=False,
        box={"centre": [0.0, 0.0, 0.0], "axes": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], "half_width": 1.0},
        area=summary(areas),
        regions_per_unit_area=len(polys) / 4.0,
        boundary_length=24.0,
        boundary_length_per_layer={"fc1/Relu": 14.0, "fc2/Relu": 10.0},
        decision_boundary={"pieces": 7, "length": 2.0},
        classes={"0": classes.count(0), "1": classes.count(1)},
        points=[[-0.5, -0.4], [0.6, -0.2], [0.0, 0.6]],
        point_classes=[0, 1, 1],
        point_rows=[3, 1, 4],
        source="data",
        polygons=[{"vertices": p, "area": a, "activation": f"{k:040x}", "class": c} for k, (p, a, c) in enumerate(zip(polys, areas, classes))],
        decision_segments=[[[0.0, -1.0], [0.0, 1.0]]],
    )


def empty_result() -> AuditResult:
    """No segments, no points, no summaries, no units: every metric undefined."""
    return AuditResult(
        model=ModelInfo(
            path="empty.onnx", sha256="", input_shape=[3], output_shape=[1], neurons=0, maxpool_windows=0,
            params=4, macs=3, opset=13, producer="", input_name="x", output_name="y", nodes=[], notes=[], validation={},
        ),
        settings={"seed": 0, "synthetic": True},
        density=Density(),
        deviation=Deviation(),
        distance=Distance(),
        notes=["The model has no ReLU-type units: density and distance are undefined."],
    )


def max_knots_note(max_knots: int) -> str:
    """The note a real audit of `truncated_result` carries (one segment and one loop cut short)."""
    return truncated_result(max_knots).notes[-1]


def truncated_result(max_knots: int = 64) -> AuditResult:
    """A segment and a loop stopped at --max-knots: the flags and the note a real audit records."""
    r = sample_result(n_segments=12, n_points=12, with_slice=False)
    r.settings["max_knots"] = max_knots
    r.density.segments[0].truncated = True
    r.density.paths[0].truncated = True
    r.notes += truncation_notes(r.density.segments, r.density.paths, max_knots)
    return r


NASTY = "<script>alert(1)</script>"
NASTY_MD = "a|b*_c_[x](http://evil)"


def nasty_result() -> AuditResult:
    r = sample_result(n_segments=12, n_points=12, layer_names=[NASTY, NASTY_MD, "$x^2$ `tick` \\ end"], with_slice=False)
    r.model.path = f"/tmp/{NASTY}/{NASTY_MD}.onnx"
    r.model.output_name = "<img src=x onerror=alert(2)>"
    r.model.nodes[1]["name"] = NASTY
    r.model.nodes[1]["detail"] = '"><iframe src="https://evil.example/"></iframe>'
    r.model.notes = [f"doc string: {NASTY}", f"note with {NASTY_MD}\nand a second line | with pipe"]
    r.notes = ["# not a heading", "<a href='https://evil.example'>click</a>"]
    r.settings["data"] = f"{NASTY_MD}.npy"
    r.gates = [GateResult(f"density.summary.median > 1 {NASTY_MD}", None, False, f"undefined {NASTY}")]
    return r


def sample_compare(seed: int = 0) -> CompareResult:
    a = sample_result(seed=seed, with_slice=False, with_paths=False, with_gates=False)
    b = sample_result(seed=seed + 1, with_slice=False, with_paths=False, with_gates=False, scale=1.3)
    b.model.path = "models/mnist_mlp_wide.onnx"
    dd = [float(sb.regions - sa.regions) for sa, sb in zip(a.density.segments, b.density.segments)]
    dv = [sb.norm - sa.norm for sa, sb in zip(a.deviation.segments, b.deviation.segments)]
    fp = lambda xs: (sum(1 for x in xs if x > 0) / len(xs)) if xs else None  # noqa: E731
    return CompareResult(
        a=a,
        b=b,
        paired=Paired(PairedMeasure(dd, fp(dd), summarize(dd)), PairedMeasure(dv, fp(dv), summarize(dv))),
        gates=[GateResult("paired.deviation.fraction_positive > 0.5", fp(dv), False, "")],
        timing={"total": 12.5},
    )
