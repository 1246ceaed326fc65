"""`audit()`: import a model, build probes, run the exact analyzers, collect an `AuditResult`.

This is the library entry point; the CLI only parses options, calls it and writes outputs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from regionaudit import probes as P
from regionaudit.analysis.density import SegmentTrace, trace_segments
from regionaudit.analysis.deviation import absolute_deviation, deviation_norm
from regionaudit.analysis.distance import boundary_distances
from regionaudit.analysis.stats import spearman, summary
from regionaudit.errors import BadData, BadOption
from regionaudit.estimate import estimate, long_run_message
from regionaudit.files import load_array, sha256_of
from regionaudit.importer import ImportedModel, import_model
from regionaudit.slice_audit import measure_slice, slice_settings
from regionaudit.result import (
    AuditResult,
    Density,
    Deviation,
    Distance,
    ModelInfo,
    PathDensity,
    PointDistance,
    SegmentDensity,
    SegmentDeviation,
    finite_or_none,
)

DTYPES = {"float64": torch.float64, "float32": torch.float32}
SYNTHETIC_ROWS = 100


@dataclass
class Options:
    """Every option that changes a number; stored as `settings` in the result."""

    seed: int = 0
    pairs: int = 100
    max_points: int = 100
    loops: int = 0
    loop_radius: float = 2.0
    loop_steps: int = 16
    layout: str = "chw"  # the model's image layout
    data_layout: str = "chw"  # the layout of the arrays in data, points and segments files
    dtype: str = "float64"
    device: str = "cpu"
    max_knots: int | None = None
    max_memory: int | None = None
    keep_knots: bool = False
    input_shape: tuple[int, ...] | None = None
    output_name: str | None = None
    # --- 2-D slice (see slice_audit.py)
    slice: bool = True
    slice_points: str | None = None
    slice_scale: float = 1.25
    slice_box: tuple[float, float, float, float] | None = None
    max_regions: int | None = 200_000
    keep_polygons: bool = False
    slice_color: str = "region"  # the picture only


def load_model(model: str | Path | ImportedModel, opts: Options, check_rows: np.ndarray | None = None) -> ImportedModel:
    if isinstance(model, ImportedModel):
        return model
    if opts.dtype not in DTYPES:
        raise BadOption(f"--dtype must be float64 or float32, got {opts.dtype!r}")
    return import_model(
        str(model),
        input_shape=opts.input_shape,
        output_name=opts.output_name,
        dtype=DTYPES[opts.dtype],
        device=opts.device,
        check_inputs=check_rows,
        seed=opts.seed,
    )


def check_rows(data: str | Path | None) -> np.ndarray | None:
    """The first data rows, on which every import is checked too (random inputs alone may miss
    the input range the model is used in)."""
    rows = None if data is None else load_array(data, "data", head=8)
    return rows if rows is not None and rows.ndim >= 2 else None  # probes.as_rows explains a bad shape


def _file_setting(settings: dict, key: str, path: str | Path | None, notes: list[str]) -> np.ndarray | None:
    settings[key] = None if path is None else str(path)
    settings[f"{key}_sha256"] = None if path is None else sha256_of(path)
    if path is None:
        return None
    arr = load_array(path, key, as_float=False)
    warning = P.suspicious(arr, f"{key} file {path}", lead=2 if key == "segments" else 1)
    if warning:
        notes.append(warning)
    return arr.astype(np.float64, copy=False)


def build_probes(
    input_shape: tuple[int, ...],
    opts: Options,
    data: str | Path | None,
    points: str | Path | None,
    segments: str | Path | None,
    settings: dict,
) -> P.Probes:
    """Probes from the files given, or from seeded Gaussian rows when none is.

    Explicit `--segments` / `--points` keep their file order and take the place of what data rows
    would give; an option that ends up unused is recorded as null, so the settings say what ran.
    """
    for name, value in (("--layout", opts.layout), ("--data-layout", opts.data_layout)):
        if value not in P.LAYOUTS:
            raise BadOption(f"{name} must be chw or hwc, got {value!r}")
    warnings: list[str] = []
    rows = _file_setting(settings, "data", data, warnings)
    pts = _file_setting(settings, "points", points, warnings)
    segs = _file_setting(settings, "segments", segments, warnings)
    for arr, what in ((rows, "data"), (pts, "points"), (segs, "segments")):
        if arr is not None:
            P.check_size(arr, what)
    synthetic = rows is None and pts is None and segs is None
    if synthetic:
        settings["data_layout"] = None  # no array was read, so the layout of arrays changed nothing
        if not opts.loops:
            settings["layout"] = None
    source = "data"
    notes: list[str] = []
    layouts = (opts.data_layout, opts.layout)
    if rows is not None:
        rows = P.as_rows(rows, input_shape, "data", *layouts, notes)
        settings["data_rows"] = len(rows)
    elif synthetic:
        rows = P.synthetic_rows(input_shape, max(SYNTHETIC_ROWS, opts.max_points), opts.seed)
        source = "synthetic Gaussian"
    none = np.zeros((0, *input_shape))
    parts: list[str] = []

    if segs is not None:
        pair = P.as_segments(segs, input_shape, *layouts, notes)
        parts.append(f"{len(pair[0])} segments from {segments}")
    elif rows is not None:
        i, j = P.random_pairs(len(rows), opts.pairs, opts.seed)
        pair = rows[i], rows[j]
        parts.append(f"{len(i)} segments between seeded random pairs of {source} rows")
    else:
        pair = none, none
    if segs is not None or rows is None:
        settings["pairs"] = None

    if pts is not None:
        at = P.as_rows(pts, input_shape, "points", *layouts, notes)
        parts.append(f"{len(at)} points from {points}")
        settings["max_points"] = None
    elif rows is not None:
        at = rows[: opts.max_points]
        parts.append(f"{len(at)} points (the first {source} rows)")
    else:
        at = none
        settings["max_points"] = None

    probes = P.Probes(segments=pair, points=at, synthetic=synthetic, notes=notes, warnings=warnings)
    if opts.loops:
        images = rows if rows is not None else at
        if not len(images):
            raise BadOption("--loops needs images to shift: give --data (or --points)")
        probes.loops = P.translation_loops(images, opts.loops, opts.loop_radius, opts.loop_steps, opts.layout)
        parts.append(f"{len(probes.loops)} closed translation loops (radius {opts.loop_radius} px, {opts.loop_steps} shifts)")
        if len(probes.loops) < opts.loops:
            probes.notes.append(f"--loops {opts.loops} asked for more loops than there are images: {len(probes.loops)} were measured.")
    probes.description = "; ".join(parts)
    probes.rows = rows
    return probes


def _to_tensor(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64))


def _lengths(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean segment lengths; data whose differences overflow float64 is refused here,
    before any analysis, since nothing measured along such segments would mean anything."""
    with np.errstate(over="ignore", invalid="ignore"):
        lengths = np.linalg.norm((b - a).reshape(len(a), int(np.prod(a.shape[1:]))), axis=1)
    if not np.isfinite(lengths).all():
        raise BadData("segment lengths overflow float64 on these inputs; check the data's scale")
    return lengths


def _segment_records(
    traces: list[SegmentTrace], lengths: np.ndarray, keep_knots: bool
) -> tuple[list[SegmentDensity], list[SegmentDeviation]]:
    dens, devs = [], []
    for tr, length in zip(traces, lengths):
        regions = tr.regions
        dens.append(
            SegmentDensity(
                regions=regions,
                length=float(length),
                density=float(regions / length) if length > 0 else None,
                knots_per_layer=dict(tr.knots_per_layer),
                truncated=bool(tr.truncated),
                knots=[float(t) for t in tr.t.tolist()] if keep_knots else None,
            )
        )
        devs.append(_deviation_record([tr], [float(length)]))
    return dens, devs


def _deviation_record(traces: list[SegmentTrace], lengths: list[float]) -> SegmentDeviation:
    """Deviation summed over a path's segments; undefined (null) where --max-knots cut a segment
    short, since the function between the knots that were not inserted is unknown."""
    if any(tr.truncated for tr in traces):
        return SegmentDeviation(per_output=None, norm=None)
    total = sum(absolute_deviation(tr, length) for tr, length in zip(traces, lengths))
    return SegmentDeviation(per_output=[float(v) for v in total.tolist()], norm=float(deviation_norm(total)))


def _loop_records(network, loops, opts, progress) -> tuple[list[PathDensity], list[SegmentDeviation]]:
    paths, devs = [], []
    for loop in loops:
        a, b = loop.edges
        lengths = _lengths(a, b)
        traces = trace_segments(network, _to_tensor(a), _to_tensor(b), max_knots=opts.max_knots, max_memory=opts.max_memory)
        knots = sum(tr.regions - 1 for tr in traces)
        per_layer: dict[str, int] = {}
        for tr in traces:
            for k, v in tr.knots_per_layer.items():
                per_layer[k] = per_layer.get(k, 0) + v
        length = float(lengths.sum())
        regions = max(1, knots)
        paths.append(
            PathDensity(
                regions=regions,
                length=length,
                density=regions / length if length > 0 else None,
                knots_per_layer=per_layer,
                edges=len(traces),
                truncated=any(tr.truncated for tr in traces),
            )
        )
        devs.append(_deviation_record(traces, lengths.tolist()))
        if progress:
            progress(1)
    return paths, devs


def model_info(imported: ImportedModel) -> ModelInfo:
    net = imported.network
    return ModelInfo(
        path=imported.path,
        sha256=imported.sha256,
        input_shape=list(net.input_shape),
        output_shape=list(net.output_shape),
        neurons=net.neurons,
        maxpool_windows=net.maxpool_windows,
        params=imported.params,
        macs=net.macs(),
        opset=imported.opset,
        producer=imported.producer,
        input_name=net.input_name,
        output_name=net.output_name,
        nodes=imported.nodes,
        notes=list(imported.notes),
        validation=imported.validation,
    )


def audit(
    model: str | Path | ImportedModel,
    data: str | Path | None = None,
    points: str | Path | None = None,
    segments: str | Path | None = None,
    options: Options | None = None,
    progress=None,
    warn=None,
    notify=None,
    clock=time.perf_counter,
    **kwargs,
) -> AuditResult:
    """Measure density, deviation and boundary distance of `model` on probes; see DESIGN.md.

    `options` (or keyword arguments named like its fields) set seeds, probe counts and precision;
    `progress`, if given, is called as progress(stage, total) and returns a callable(n) or None;
    `warn`, if given, is called with each note that should reach the user before the analysis runs
    (data that looks unscaled, an option that has no effect). Those notes are in the result too.
    `notify`, if given, is called with one line when the audit is estimated to take long
    (regionaudit.estimate); `clock` times the stages and that estimate.
    """
    opts = options or Options(**kwargs)
    t_start = clock()
    timing: dict[str, float] = {}
    settings: dict = {
        "seed": opts.seed,
        "pairs": opts.pairs,
        "max_points": opts.max_points,
        "loops": opts.loops,
        "loop_radius": opts.loop_radius if opts.loops else None,
        "loop_steps": opts.loop_steps if opts.loops else None,
        # the model's layout matters for loops, and for files in another layout (they are transposed)
        "layout": opts.layout if opts.loops or opts.data_layout != opts.layout else None,
        "data_layout": opts.data_layout,
        "dtype": opts.dtype,
        "device": opts.device,
        "max_knots": opts.max_knots,
        "input_shape": list(opts.input_shape) if opts.input_shape else None,
        "output_name": opts.output_name,
    }
    imported = load_model(model, opts, None if isinstance(model, ImportedModel) else check_rows(data))
    timing["import_s"] = imported.import_s
    net = imported.network
    settings["device"] = str(net.device.type)
    probes = build_probes(net.input_shape, opts, data, points, segments, settings)
    settings.update(slice_settings(opts))
    settings["synthetic"] = probes.synthetic
    settings["probes"] = probes.description
    notes: list[str] = list(probes.warnings) + list(probes.notes)
    if probes.synthetic:
        notes.append("No data was given: probes are seeded standard Gaussian inputs, not the model's data.")
    else:
        layout = f" (image arrays read as {opts.data_layout}, --data-layout)" if len(net.input_shape) == 3 else ""
        notes.append(f"Data is used as given{layout}: it must already be in the model's input scale.")

    a, b = probes.segments
    lengths = _lengths(a, b)
    for message in probes.warnings if warn is not None else []:  # after the checks that refuse data
        warn(message)
    seg_a, seg_b, at = _to_tensor(a), _to_tensor(b), _to_tensor(probes.points)
    if notify is not None:
        loop_edges = sum(len(loop.vertices) for loop in probes.loops)
        est = estimate(net, (seg_a, seg_b), loop_edges, at, opts.max_knots, opts.max_memory, clock)
        message = long_run_message(est, settings["pairs"] is not None, settings["max_points"] is not None, opts.dtype, settings["device"])
        if message:
            notify(message)

    t0 = clock()
    bar = progress("segments", len(a)) if progress else None
    traces = trace_segments(net, seg_a, seg_b, max_knots=opts.max_knots, max_memory=opts.max_memory, progress=bar)
    seg_density, seg_dev = _segment_records(traces, lengths, opts.keep_knots)
    bar = progress("loops", len(probes.loops)) if progress and probes.loops else None
    path_density, path_dev = _loop_records(net, probes.loops, opts, bar)
    timing["density_s"] = clock() - t0

    t0 = clock()
    bar = progress("points", len(probes.points)) if progress else None
    dists = boundary_distances(net, at, max_memory=opts.max_memory, progress=bar) if len(probes.points) else []
    timing["distance_s"] = clock() - t0

    # --- 2-D slice
    slice_ = None
    if opts.slice:
        t0 = time.perf_counter()
        slice_ = measure_slice(net, opts, probes.rows, probes.synthetic, notes)
        timing["slice_s"] = time.perf_counter() - t0
    # ---

    _check_finite(seg_density, path_density, seg_dev + path_dev, dists)
    notes += truncation_notes(seg_density, path_density, opts.max_knots)
    density = _density_section(seg_density, path_density, net.neurons, notes)
    deviation = _deviation_section(seg_dev, path_dev, seg_density, notes)
    distance = _distance_section(dists, net.neurons, notes)
    # a model imported before the call (the CLI does, to check gate paths first) still counts
    timing["total_s"] = clock() - t_start + (imported.import_s if isinstance(model, ImportedModel) else 0.0)
    return AuditResult(
        model=model_info(imported),
        settings=settings,
        density=density,
        deviation=deviation,
        distance=distance,
        notes=notes,
        slice=slice_,
        timing=timing,
    )


def truncation_notes(segs: list[SegmentDensity], paths: list[PathDensity], max_knots: int | None) -> list[str]:
    cut = [sum(s.truncated for s in segs), sum(p.truncated for p in paths)]
    if not any(cut):
        return []
    return [
        f"{cut[0]} segments and {cut[1]} loops reached --max-knots {max_knots}: their region counts are lower "
        "bounds, and their absolute deviation is undefined (null), left out of the deviation summaries and "
        "the Spearman correlation."
    ]


def _check_finite(seg_density, path_density, deviations, dists) -> None:
    """Finite inputs can still overflow float64 on the way (e.g. rows scaled by 1e300); such
    numbers mean nothing, so the data is refused rather than reported."""
    values = [d.length for d in seg_density + path_density]
    values += [v for d in deviations for v in d.per_output or []]
    values += [d.distance for d in dists if d.distance is not None]
    if not np.isfinite(np.asarray(values, dtype=np.float64)).all():
        raise BadData(
            "the analysis overflowed float64 on these inputs (a length, deviation or distance is not finite); "
            "check the data's scale"
        )


def _density_section(segs: list[SegmentDensity], paths: list[PathDensity], neurons: int, notes: list[str]) -> Density:
    totals: dict[str, int] = {}
    for s in segs:
        for k, v in s.knots_per_layer.items():
            totals[k] = totals.get(k, 0) + v
    regions = [s.regions for s in segs]
    if not segs:
        notes.append("No segments were measured: density and deviation summaries are undefined (null).")
    zero = sum(s.density is None for s in segs)
    if zero:
        notes.append(
            f"{zero} segments have zero length (identical end points): 1 region each, but no density per length "
            "and no Spearman correlation entry."
        )
    per_neuron = None
    if neurons > 0:
        per_neuron = summary([r / neurons for r in regions])
    elif segs:
        notes.append("The network has no ReLU-type units: regions per neuron is undefined (null).")
    return Density(
        segments=segs,
        paths=paths,
        summary=summary(regions),
        per_length=summary([s.density for s in segs if s.density is not None]),
        regions_per_neuron=per_neuron,
        path_summary=summary([p.regions for p in paths]),
        knots_per_layer=totals,
    )


def _deviation_section(segs: list[SegmentDeviation], paths: list[SegmentDeviation], dens: list[SegmentDensity], notes) -> Deviation:
    pairs = [(d.density, s.norm) for d, s in zip(dens, segs) if d.density is not None and s.norm is not None]
    rho = spearman([p[0] for p in pairs], [p[1] for p in pairs]) if pairs else None
    if pairs and rho is None:
        notes.append("Spearman correlation of density and deviation is undefined (fewer than 3 segments or a constant series).")
    return Deviation(
        segments=segs,
        paths=paths,
        summary=summary([s.norm for s in segs if s.norm is not None]),
        path_summary=summary([p.norm for p in paths if p.norm is not None]),
        spearman_density=finite_or_none(rho),
    )


def _distance_section(dists, neurons: int, notes: list[str]) -> Distance:
    points = [
        PointDistance(
            distance=finite_or_none(d.distance),
            node=d.node,
            unit=d.unit,
            scaled=finite_or_none(d.distance * neurons) if d.distance is not None and neurons > 0 else None,
        )
        for d in dists
    ]
    values = [p.distance for p in points if p.distance is not None]
    if not values:
        notes.append("No boundary distance is defined (no points, or no units whose gradient is nonzero).")
    elif neurons == 0:
        notes.append("The network has no ReLU-type units: distance × neurons is undefined (null).")
    return Distance(
        points=points,
        summary=summary(values),
        scaled_summary=summary([p.scaled for p in points if p.scaled is not None]),
    )
