"""AuditResult → plain data for the templates: formatted numbers, sentences, tables, plots.

Nothing here knows about HTML or Markdown; the templates only lay out what this module builds
(coverage.py's split between `FileData`/`IndexItem` and its `htmlfiles/` templates).
Every metric may be `None` (undefined); every list may be empty. The tables live in `tables.py`.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import PurePath

from regionaudit.version import __version__
from regionaudit import metrics
from regionaudit.metrics import BY_PATH, sentence
from regionaudit.report import formatting as show
from regionaudit.report import framecontext as RF
from regionaudit.report import plots
from regionaudit.report.tables import (
    Table,
    distribution_table,
    gates_table,
    node_table,
    paired_paths_table,
    paths_table,
    shown_metrics,
    summary_of,
    timing_rows,
)
from regionaudit.result import AuditResult, CompareResult

LIBRARIES = ("torch", "onnx", "onnxruntime", "numpy", "scipy")
NO_SEGMENTS = sentence(metrics.NO_SEGMENTS)
REGIONS, DISTANCE, DEVIATION, SPEARMAN = (
    BY_PATH[p] for p in ("density.summary", "distance.summary", "deviation.summary", "deviation.spearman_density")
)


def no_deviation(result) -> str:
    """Why there is no deviation to show: no segments, or every one cut short by --max-knots."""
    if result.density.segments and all(s.truncated for s in result.density.segments):
        return sentence(metrics.ALL_TRUNCATED)
    return NO_SEGMENTS


def no_distance(result) -> str:
    """Why there is no distance to show: no points, no units, or no unit with a nonzero gradient."""
    counts = metrics.Counts(points=len(result.distance.points), neurons=result.model.neurons)
    return sentence(DISTANCE.why_null(counts))


DATA_AS_GIVEN = (
    "Data is used as given: regionaudit does not rescale or normalise it, so it must already be in "
    "the model's input scale. Image arrays are read in the layout --data-layout declares (chw unless "
    "given) and transposed to the model's layout when the two differ."
)
SYNTHETIC_WARNING = (
    "No data was given: the probes are seeded Gaussian points, not real data. Region counts, "
    "distances and deviations near real inputs can differ a lot."
)


@dataclass
class Metric:
    key: str
    label: str
    value: str  # headline number, formatted
    unit: str  # small text after the value
    sentence: str  # one plain-language sentence
    defined: bool = True
    reference: str = ""  # the median's 95 % interval and its init reference (framecontext.py)


@dataclass
class Plot:
    id: str
    title: str
    caption: str
    svg: str | None
    empty: str  # sentence shown when svg is None


def versions() -> list[tuple[str, str]]:
    out = [("regionaudit (report)", __version__), ("python", platform.python_version())]
    for name in LIBRARIES:
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            out.append((name, "not installed"))
    return out


def median(summary: dict | None):
    """The median of a summary, or None: a summary is None when nothing was measured."""
    return None if not summary else summary.get("median")


def model_name(result: AuditResult) -> str:
    """The model file's name without folders, for titles (HTML, PDF and the model card)."""
    path = result.model.path or "model"
    return PurePath(path.replace("\\", "/")).name or path


def probe_words(result: AuditResult) -> tuple[str, str]:
    """How to call the segment endpoints and the points in sentences (HTML and card share them)."""
    settings = result.settings or {}
    if settings.get("synthetic"):
        return "two random probe points", "a random probe point"
    if settings.get("segments"):
        return "its two endpoints", "a probe point"
    return "two data points", "a data point"


def headline_metrics(result: AuditResult) -> list[Metric]:
    d, v, dist = result.density, result.deviation, result.distance
    between, at = probe_words(result)
    cards: list[Metric] = []

    s = d.summary
    med = median(s)
    if med is not None:
        text = f"Median {show.num(med)} linear regions along a segment between {between}"
        spread = show.spread(s)
        text += f" ({spread})." if spread else "."
        cut = cut_short(result)
        if cut:
            text += f" {cut}"
        cards.append(Metric("regions", REGIONS.label, show.num(med), "median, a lower bound" if cut else "median", text))
    else:
        cards.append(Metric("regions", REGIONS.label, show.DASH, "", NO_SEGMENTS + " Region density is undefined.", False))

    s = dist.summary
    med = median(s)
    if med is not None:
        text = f"Median distance {show.num(med)} (input units) from {at} to the nearest region boundary"
        text += show.approx_words(dist)
        spread = show.spread(s, show.num)
        text += f" ({spread})." if spread else "."
        scaled = median(dist.scaled_summary)
        if scaled is not None:
            text += f" Distance × neurons, roughly scale-free: median {show.num(scaled)}."
        cards.append(Metric("distance", DISTANCE.label, show.num(med), "median", text))
    else:
        cards.append(Metric("distance", DISTANCE.label, show.DASH, "", no_distance(result) + " Boundary distance is undefined.", False))

    s = v.summary
    med = median(s)
    if med is not None:
        text = f"Median absolute deviation {show.num(med)} from linear along a segment"
        spread = show.spread(s, show.num)
        text += f" ({spread})" if spread else ""
        text += ": the area between the model and the straight line through its end values, L2 over outputs."
        cards.append(Metric("deviation", DEVIATION.label, show.num(med), "median", text))
    else:
        cards.append(Metric("deviation", DEVIATION.label, show.DASH, "", no_deviation(result) + " Deviation is undefined.", False))

    rho = v.spearman_density
    if rho is not None:
        strength = "strongly" if abs(rho) >= 0.6 else "moderately" if abs(rho) >= 0.3 else "weakly"
        p_value = (v.spearman or {}).get("p_value")
        if p_value is not None and p_value >= 0.05:
            n = v.spearman.get("count") or sum(seg.norm is not None for seg in v.segments)
            meaning = (f"with {show.count(n)} segments this is no evidence of a relation either way "
                       f"(p = {show.num(p_value)})")
        elif abs(rho) < 0.1:
            meaning = "region density says little about how far a segment deviates from linear"
        elif rho > 0:
            meaning = f"segments that cross more regions per unit length {strength} tend to deviate more from linear"
        else:
            meaning = f"segments that cross more regions per unit length {strength} tend to deviate less from linear"
        text = f"Spearman ρ = {show.num(rho)} between a segment's region density and its absolute deviation: {meaning}."
        cards.append(Metric("spearman", SPEARMAN.label, show.num(rho), "", text))
    else:
        cards.append(
            Metric(
                "spearman",
                SPEARMAN.label,
                show.DASH,
                "",
                f"Spearman ρ is undefined ({metrics.SPEARMAN_UNDEFINED}).",
                False,
            )
        )
    return cards


def cut_short(result: AuditResult) -> str:
    """A sentence where --max-knots stopped segments (the notes name it, once): their counts, and
    summaries over them, are lower bounds; "" where none was stopped."""
    cut = result.density.cut_segments
    if not cut:
        return ""
    return (f"{show.count(cut)} of {show.count(len(result.density.segments))} segments were cut short (see the notes): their counts, "
            "and the median, are lower bounds.")


def model_section(result: AuditResult) -> dict:
    m = result.model
    val = m.validation or {}
    rel, abs_ = val.get("max_rel_err"), val.get("max_abs_err")
    ref = val.get("reference") or "onnxruntime"
    if rel is not None or abs_ is not None:
        validation_sentence = (
            f"The imported network matches {ref} to a maximum absolute error of {show.num(abs_)} "
            f"(relative {show.num(rel)}) on the validation inputs."
        )
    else:
        validation_sentence = "No validation against onnxruntime was recorded."
    facts = [
        ("File", m.path or show.DASH),
        ("SHA-256", m.sha256 or show.DASH),
        ("Input", f"{m.input_name or '(unnamed)'}  ·  shape {show.shape(m.input_shape)} (batch axis left out)"),
        ("Output", f"{m.output_name or '(unnamed)'}  ·  shape {show.shape(m.output_shape)}"),
        ("Opset / producer", f"{m.opset}  ·  {m.producer or 'unknown producer'}"),
        ("ReLU-type neurons", show.count(m.neurons)),
        ("MaxPool windows", show.count(m.maxpool_windows)),
        ("Parameters", show.count(m.params)),
        ("Multiply-adds per input", show.count(m.macs)),
    ]
    return {
        "name": model_name(result),
        "sha_short": show.short_hash(m.sha256),
        "input_shape": show.shape(m.input_shape),
        "facts": facts,
        "cards": [
            ("neurons", show.big(m.neurons)),
            ("parameters", show.big(m.params)),
            ("multiply-adds", show.big(m.macs)),
            ("MaxPool windows", show.big(m.maxpool_windows)),
        ],
        "validation": [(str(k), show.value(v)) for k, v in val.items()],
        "validation_sentence": validation_sentence,
        "nodes": node_table(result),
    }


def settings_section(result: AuditResult) -> dict:
    s = result.settings or {}
    d = result.density
    n_seg, n_pts, n_paths = len(d.segments), len(result.distance.points), len(d.paths)
    data = s.get("data")
    data_hash = s.get("data_sha256")
    probes = []
    if n_seg:
        probes.append(show.counted(n_seg, "segment"))
    if n_pts:
        probes.append(show.counted(n_pts, "point"))
    if n_paths:
        probes.append(show.counted(n_paths, "closed translation loop"))
    if result.slice is not None:
        probes.append("one 2-D slice")
    source = "seeded Gaussian probes" if s.get("synthetic") else ("data" if data else "the given probes")
    described = s.get("probes")
    lines = [
        f"Probes: {described.rstrip('.')}." if isinstance(described, str) and described
        else f"Probes measured: {', '.join(probes) if probes else 'none'}, from {source}.",
        f"Seed {show.value(s.get('seed'))}; computed in {s.get('dtype') or 'float64'} on {s.get('device') or 'cpu'}.",
    ]
    return {
        "lines": lines,
        "data": data,
        "data_hash": data_hash,
        "synthetic": bool(s.get("synthetic")),
        "synthetic_warning": SYNTHETIC_WARNING,
        "data_as_given": DATA_AS_GIVEN,
        "table": [(str(k), show.value(v)) for k, v in s.items() if v is not None],
    }


def result_notes(result: AuditResult) -> list[str]:
    """The import's and the audit's notes, once each, as the result carries them.

    The report adds no notes of its own (the audit already says when --max-knots was reached);
    "Data is used as given" and "No data was given" are left out because the settings section and
    the synthetic-probes banner state them in full.
    """
    notes = [str(n) for n in (result.model.notes or [])] + [str(n) for n in (result.notes or [])]
    said_elsewhere = ("Data is used as given", "No data was given")
    return list(dict.fromkeys(n for n in notes if not n.startswith(said_elsewhere)))


def audit_plots(result: AuditResult) -> dict[str, list[Plot]]:
    """The report's plots, grouped by the section they belong to (the templates take them as given)."""
    # --- reference frame: each plot says something new, trained and init overlaid (framecontext.py)
    groups = {"density": ("density-hist", "knots-per-layer-unit", "segment-profile"),
              "deviation": ("deviation-ecdf", "density-vs-deviation"), "distance": ("nearest-layer",),
              "loops": ("loops-plot",)}
    made = RF.frame_plots(result, Plot, NO_SEGMENTS, no_distance(result), no_deviation(result))
    out = {key: [p for p in made if p.id in ids] for key, ids in groups.items()}
    sliced: list[Plot] = []
    # --- end reference frame
    if result.slice is not None:
        from regionaudit.report.slice_plot import report_svg

        sliced.append(slice_plot_record(result, report_svg(result.slice)))
    return {**out, "slice": sliced}


def audit_context(result: AuditResult, clock=None) -> dict:
    """With `clock` (a seconds counter), the timing table includes the report's own making."""
    started = clock() if clock else 0.0
    model = model_section(result)
    gates = gates_table(result.gates)
    failed = sum(1 for g in result.gates if not g.passed)
    ctx = {
        "title": f"{model['name']} — linear-region audit",
        "model": model,
        "settings": settings_section(result),
        "notes": result_notes(result),
        "metrics": _with_reference(result, headline_metrics(result)),
        "distributions": distribution_table(result),
        "plots": audit_plots(result),
        # --- reference frame
        "frame": {
            "init_sentence": RF.HOW_TO_READ_INIT,
            "init_table": RF.init_table(result),
            "capacity_sentence": RF.HOW_TO_READ_CAPACITY,
            "capacity_table": RF.capacity_table(result.capacity),
            "capacity_lines": RF.capacity_lines(result),
            "class_sentence": RF.class_sentence(result),
            "class_density": RF.class_table(result, "density"),
            "class_deviation": RF.class_table(result, "deviation"),
            "sections": RF.section_sentences(result),
        },
        # --- end reference frame
        "paths": paths_table(result),
        "slice": _slice_facts(result.slice),
        "gates": gates,
        "gates_failed": failed,
    }
    return _closing(ctx, result, clock, started)


def _closing(ctx: dict, result: AuditResult | CompareResult, clock, started: float) -> dict:
    """What every report ends with: the versions that made it and what the run cost. The report's
    own making is part of that cost: with `clock`, its plots and tables, timed since `started` (the
    JSON's `timing.report_s`, written after the report, counts its layout into HTML or PDF too)."""
    ctx.update(result_version=result.regionaudit, schema=result.schema, versions=versions())
    # the footer says what is exact: approximate distances (--distance approx) are not
    audits = [result.a, result.b] if isinstance(result, CompareResult) else [result]
    ctx["approx_distance"] = any(a.distance.method == "approx" for a in audits)
    timing = dict(result.timing or {})
    if clock:
        timing["report (its plots and tables)"] = clock() - started
    ctx["timing"] = timing_rows(timing)
    return ctx


def _with_reference(result: AuditResult, metrics: list[Metric]) -> list[Metric]:
    lines = RF.reference_lines(result)
    for m in metrics:
        if m.defined:
            m.reference = lines.get(m.key, "")
    return metrics


def slice_plot_record(result: AuditResult, svg: str | None) -> Plot:
    sl = result.slice
    where = "the model's input plane" if "xmin" in sl.box else "the plane through three data points" if sl.source == "data" else (
        "the plane through three synthetic Gaussian points" if sl.source == "synthetic" else "the plane through the three given points"
    )
    by_class = sl.drawing is not None and sl.drawing.color == "class"
    caption = (
        f"Every activation region of {where}, computed exactly (Hanin & Rolnick 2019a, Fig. 1): each "
        "filled polygon is one region where the network is affine"
        + (" (the partition stopped early, see the notes: a polygon left unsplit may hold several regions)" if sl.truncated else "")
        + ("; its fill is its predicted class (the key names them)" if by_class else "; fills only set neighbours apart")
        + "; thin lines are region boundaries, coloured by the layer that made them; "
        + ("the thick black line is the decision boundary, where the predicted class changes; "
           if sl.decision_boundary.get("pieces") else
           "no decision boundary crosses the box: one class holds it; " if len(sl.classes) <= 1 and not sl.truncated else
           "no decision boundary was found in the part partitioned; ")
        + "the marked points p0, p1, p2 carry their predicted class."
    )
    empty = f"The picture needs the polygons, which this result does not hold ({sl.regions:,} regions counted)."
    return Plot("slice", "2-D slice", caption, svg, empty)


def _slice_facts(sl) -> list[tuple[str, str]]:
    """The slice's numbers beside its picture."""
    if sl is None:
        return []
    # a stopped partition: what only grows as it goes on is a lower bound (as the card says)
    bound = " (lower bound: --max-regions reached)" if sl.truncated else ""
    rows = [
        ("Regions", show.count(sl.regions) + bound),
        ("Regions per unit area", show.num(sl.regions_per_unit_area) + bound),
        ("Median region area", show.num(median(sl.area))),
        ("Boundary length", show.num(sl.boundary_length) + bound),
    ]
    rows += [(f"  made by {name}", show.num(v)) for name, v in sl.boundary_length_per_layer.items()]
    rows += [
        ("Decision boundary", f"{show.num(sl.decision_boundary.get('length'))} long, {show.count(sl.decision_boundary.get('pieces'))} pieces"),
        ("Regions per predicted class", ", ".join(f"{k}: {show.count(v)}" for k, v in sorted(sl.classes.items(), key=lambda kv: int(kv[0])))),
    ]
    if "half_width" in sl.box:
        rows.append(("Square half-width", show.num(sl.box.get("half_width"))))
    else:
        rows.append(("Box", f"x {show.num(sl.box['xmin'])} … {show.num(sl.box['xmax'])}, y {show.num(sl.box['ymin'])} … {show.num(sl.box['ymax'])}"))
    return rows


# --- compare ---------------------------------------------------------------------------------


def _cmp_row(label, a, b, fmt=show.num):
    diff = None if a is None or b is None else b - a
    sign = "" if diff is None or diff <= 0 else "+"
    return [label, fmt(a), fmt(b), sign + fmt(diff) if diff is not None else show.DASH]


def _median_row(label, sa: dict | None, sb: dict | None) -> list[str]:
    """A median row of the side-by-side table, each median with its 95 % interval."""
    row = _cmp_row(label, median(sa), median(sb))
    for i, summ in ((1, sa), (2, sb)):
        ci = RF.ci_text(summ).replace("95 % CI ", "")
        if ci:
            row[i] += f" {ci}"
    return row


def compare_context(result: CompareResult, clock=None) -> dict:
    started = clock() if clock else 0.0
    a, b = result.a, result.b
    name_a, name_b = model_name(a), model_name(b)
    if name_a == name_b:
        name_a, name_b = f"A: {name_a}", f"B: {name_b}"
    rows = [
        _cmp_row("ReLU-type neurons", a.model.neurons, b.model.neurons),
        _cmp_row("Parameters", a.model.params, b.model.params),
        _cmp_row("Multiply-adds", a.model.macs, b.model.macs),
        _cmp_row("Segments measured", len(a.density.segments), len(b.density.segments)),
    ]
    for metric in shown_metrics(a):
        if metric.loops:
            continue  # loops are compared loop by loop (`paired_paths_table`), not by summary
        va, vb = summary_of(a, metric.path), summary_of(b, metric.path)
        label = metric.label
        if metric.summary:  # each median with its 95 % interval
            rows.append(_median_row(f"Median {label[:1].lower()}{label[1:]}", va, vb))
            continue
        rows.append(_cmp_row(label, va, vb))
    table = Table(["", name_a, name_b, "B − A"], rows, numeric=[False, True, True, True])

    def paired(measure, what, unit, integer, pid):
        fp = measure.fraction_positive
        n = measure.pairs
        if fp is None:
            sentence = f"The fraction of segments where B has the larger {what} is undefined ({n} pairs)."
        else:
            sentence = f"On {show.percent(fp)} of {n:,} segments B has the larger {what} than A."
        spread = show.spread(measure.summary)
        if measure.summary and measure.summary.get("median") is not None:
            sentence += f" Median difference B − A: {show.num(measure.summary['median'])} {unit}" + (f" ({spread})." if spread else ".")
        return {
            "sentence": sentence,
            "fraction_positive": show.percent(fp),
            "plot": Plot(
                pid,
                f"Paired differences: {what}",
                "How many segments have each difference B − A: orange bars are segments where B is larger, blue "
                "bars where A is larger, and the grey bar holds the ties (difference 0).",
                plots.paired_histogram(pid, measure.differences, f"{what.capitalize()}: B − A per segment", f"B − A ({unit})", integer),
                NO_SEGMENTS,
            ),
        }

    ctx = {
        "title": f"{name_a} vs {name_b} — linear-region comparison",
        "name_a": name_a,
        "name_b": name_b,
        "a": {"model": model_section(a), "settings": settings_section(a), "metrics": _with_reference(a, headline_metrics(a)), "notes": result_notes(a)},
        "b": {"model": model_section(b), "settings": settings_section(b), "metrics": _with_reference(b, headline_metrics(b)), "notes": result_notes(b)},
        "table": table,
        "density": paired(result.paired.density, "region count", "regions", True, "paired-density"),
        "deviation": paired(result.paired.deviation, "absolute deviation", "deviation", False, "paired-deviation"),
        # --- reference frame: tests, overlays, paired scatter, per-layer table (framecontext.py)
        "research": {
            "tests": RF.compare_tests_table(result.paired),
            "layers": RF.compare_layer_table(a, b),
            "plots": RF.compare_plots(result, Plot, name_a, name_b),
        },
        # --- end reference frame
        "paths": paired_paths_table(a, b),
        "gates": gates_table(result.gates),
        "gates_failed": sum(1 for g in result.gates if not g.passed),
    }
    return _closing(ctx, result, clock, started)
