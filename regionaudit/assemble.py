"""Traces and distances -> the sections of an `AuditResult`, with the notes that explain them.

The analyzers return raw measurements (knots along segments, nearest boundaries); this module
turns them into the result's plain records and summaries, decides what is undefined (null) and
says why in a note, and records the settings that produced them.
"""

from __future__ import annotations

import numpy as np

from regionaudit.analysis.density import SegmentTrace
from regionaudit.analysis.deviation import absolute_deviation, deviation_norm
from regionaudit.analysis.distance import NearestBoundary
from regionaudit.analysis.stats import spearman, summary
from regionaudit.errors import BadData
from regionaudit.files import sha256_of
from regionaudit.importer import ImportedModel
from regionaudit.metrics import BY_PATH, NO_SEGMENTS, SPEARMAN_UNDEFINED, Counts, capital
from regionaudit.options import Options, option_specs
from regionaudit.probes import Probes
from regionaudit.result import (
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

SYNTHETIC_NOTE = "No data was given: probes are seeded standard Gaussian inputs, not the model's data."
FLOAT32_NOTE = (
    "Computed in float32 (--dtype): region counts can differ from float64's, the default. Kinks closer "
    "than float32's rounding are not told apart, and where two nodes kink at the same point (relu(h) "
    "and relu(-h)), float32 can place the second node's kink beside the first's and count two."
)


def settings(opts: Options, device: str, probes: Probes) -> dict:
    """The result's `settings`: every option that changes a number (in the order of `Options`),
    null where unused, each probe file with its sha256, and what the probes were."""
    out: dict = {}
    for name, spec in option_specs().items():
        if not spec.setting:
            continue
        value = getattr(opts, name)
        if spec.recorded_if is not None and not spec.recorded_if(opts):
            value = None
        if spec.file:
            out[name] = None if value is None else str(value)
            # the probe files were hashed as they were read; --slice-points is read by the slice
            out[f"{name}_sha256"] = None if value is None else probes.hashes.get(name) or sha256_of(value, name.replace("_", " "))
        else:
            out[name] = list(value) if isinstance(value, tuple) else value
    out["device"] = device
    for name in probes.unused:
        out[name] = None
    if probes.data_rows is not None:
        out["data_rows"] = probes.data_rows
    out["synthetic"] = probes.synthetic
    out["probes"] = probes.description
    return out


def probe_notes(probes: Probes, opts: Options, input_shape: tuple[int, ...]) -> list[str]:
    """What the reader must know about the probes: warnings about the files, how they were read,
    whether they are data at all, and the precision they were measured in."""
    notes = list(probes.warnings) + list(probes.notes)
    if probes.synthetic:
        notes.append(SYNTHETIC_NOTE)
    else:
        layout = f" (image arrays read as {opts.data_layout}, --data-layout)" if len(input_shape) == 3 else ""
        notes.append(f"Data is used as given{layout}: it must already be in the model's input scale.")
    if opts.dtype == "float32":
        notes.append(FLOAT32_NOTE)
    return notes


def model_info(imported: ImportedModel) -> ModelInfo:
    net = imported.network
    return ModelInfo(
        path=imported.path,
        sha256=imported.sha256,
        input_shape=list(net.input_shape),
        output_shape=list(net.probe_output_shape),
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


def segment_records(
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
        devs.append(deviation_record([tr], [float(length)]))
    return dens, devs


def deviation_record(traces: list[SegmentTrace], lengths: list[float]) -> SegmentDeviation:
    """Deviation summed over a path's segments; undefined (null) where --max-knots cut a segment
    short, since the function between the knots that were not inserted is unknown."""
    if any(tr.truncated for tr in traces):
        return SegmentDeviation(per_output=None, norm=None)
    total = sum(absolute_deviation(tr, length) for tr, length in zip(traces, lengths))
    return SegmentDeviation(per_output=[float(v) for v in total.tolist()], norm=float(deviation_norm(total)))


def loop_records(traces: list[SegmentTrace], lengths: np.ndarray, turns: list[str | None] = ()) -> tuple[PathDensity, SegmentDeviation]:
    """A closed loop's record from the traces of its edges and the kink node that changes its
    pattern at each vertex, where one does (`loops.vertex_crossings`): it crosses `Σ knots` +
    those boundaries."""
    per_layer: dict[str, int] = {}
    for tr in traces:
        for k, v in tr.knots_per_layer.items():
            per_layer[k] = per_layer.get(k, 0) + v
    for name in turns:
        if name is not None:
            per_layer[name] = per_layer.get(name, 0) + 1
    knots = sum(tr.regions - 1 for tr in traces) + sum(name is not None for name in turns)
    length = float(lengths.sum())
    regions = max(1, knots)
    path = PathDensity(
        regions=regions,
        length=length,
        density=regions / length if length > 0 else None,
        knots_per_layer=per_layer,
        edges=len(traces),
        truncated=any(tr.truncated for tr in traces),
    )
    return path, deviation_record(traces, lengths.tolist())


def truncation_notes(segs: list[SegmentDensity], paths: list[PathDensity], max_knots: int | None) -> list[str]:
    cut = [sum(s.truncated for s in segs), sum(p.truncated for p in paths)]
    if not any(cut):
        return []
    return [
        f"{cut[0]} segments and {cut[1]} loops reached --max-knots {max_knots}: their region counts are lower "
        "bounds, and their absolute deviation is undefined (null), left out of the deviation summaries and "
        "the Spearman correlation. Which knots such a segment keeps, found node by node, can depend on how "
        "--max-memory splits the work: so can its per-layer counts, and the totals per layer."
    ]


def check_finite(seg_density, path_density, deviations, dists) -> None:
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


def density_section(segs: list[SegmentDensity], paths: list[PathDensity], neurons: int, notes: list[str]) -> Density:
    totals: dict[str, int] = {}
    for s in segs:
        for k, v in s.knots_per_layer.items():
            totals[k] = totals.get(k, 0) + v
    regions = [s.regions for s in segs]
    if not segs:
        notes.append(f"{capital(NO_SEGMENTS)}: density and deviation summaries are undefined (null).")
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


def deviation_section(segs: list[SegmentDeviation], paths: list[SegmentDeviation], dens: list[SegmentDensity], notes) -> Deviation:
    pairs = [(d.density, s.norm) for d, s in zip(dens, segs) if d.density is not None and s.norm is not None]
    rho = spearman([p[0] for p in pairs], [p[1] for p in pairs]) if pairs else None
    if pairs and rho is None:
        notes.append(f"Spearman correlation of density and deviation is undefined ({SPEARMAN_UNDEFINED}).")
    return Deviation(
        segments=segs,
        paths=paths,
        summary=summary([s.norm for s in segs if s.norm is not None]),
        path_summary=summary([p.norm for p in paths if p.norm is not None]),
        spearman_density=finite_or_none(rho),
    )


def distance_section(dists: list[NearestBoundary], neurons: int, notes: list[str]) -> Distance:
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
        why = BY_PATH["distance.summary"].why_null(Counts(points=len(points), neurons=neurons))
        notes.append(f"No boundary distance is defined: {why}.")
    elif neurons == 0:
        notes.append("The network has no ReLU-type units: distance × neurons is undefined (null).")
    return Distance(
        points=points,
        summary=summary(values),
        scaled_summary=summary([p.scaled for p in points if p.scaled is not None]),
    )
