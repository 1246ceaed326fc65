"""Report data for the reference frame: every headline number beside its initialisation reference,
its 95 % interval and the theoretical capacity; the plots that compare trained with init.

Plain data only (strings, tables, Plot records); the templates lay it out.
"""

from __future__ import annotations

import math

from regionaudit.report import formatting as F
from regionaudit.report import frameplots as FP
from regionaudit.report.tables import KINK_KINDS, Table
from regionaudit.result import reference_cut_short

HOW_TO_READ_INIT = (
    "The same architecture, re-initialised (He-normal weights, biases of variance 1e-6, batch norm as identity; "
    "Hanin & Rolnick 2019a) and measured on the same first segments and points. A ratio near 1 means training "
    "left the function about as complex as the architecture is by default; above 1, training made it more "
    "complex near the data; below 1, simpler."
)
HOW_TO_READ_CAPACITY = (
    "Bounds on the most linear regions any choice of weights could give this architecture (log10 of the count). "
    "Measured counts near the data are typically many orders of magnitude below them (Hanin & Rolnick 2019b); "
    "the line and plane bounds are the fair comparison for regions along a segment or on a slice."
)


def ci_text(summary: dict | None) -> str:
    """"95 % CI [low, high]" of a summary's median, or "" when undefined."""
    if not summary or summary.get("ci95_low") is None:
        return ""
    return f"95 % CI [{F.num(summary['ci95_low'])}, {F.num(summary['ci95_high'])}]"


def _median(summary: dict | None):
    return None if not summary else summary.get("median")


def init_ref(result) -> dict | None:
    return (result.reference or {}).get("init")


def _pooled(ref: dict, section: str, key: str) -> dict | None:
    return ((ref.get("pooled") or {}).get(section) or {}).get(key)


def subset_summary(values) -> dict | None:
    from regionaudit.analysis.stats import summary

    vals = [v for v in values if v is not None]
    return summary(vals) if vals else None


def reference_lines(result) -> dict[str, str]:
    """Per headline metric key: one line with its interval and its init reference."""
    d, v, dist = result.density, result.deviation, result.distance
    ref = init_ref(result)
    out = {}
    for key, summ, section, sub in (
        ("regions", d.summary, "density", "summary"),
        ("distance", dist.summary, "distance", "summary"),
        ("deviation", v.summary, "deviation", "summary"),
    ):
        parts = []
        ci = ci_text(summ)
        if ci:
            parts.append(ci)
        if ref:
            init = _pooled(ref, section, sub)
            if _median(init) is not None:
                parts.append(f"at init {F.num(init['median'])}" + (f" ({ci_text(init)})" if ci_text(init) else ""))
            else:
                parts.append("at init: undefined")
        out[key] = " · ".join(parts)
    if d.ratio_to_init and d.ratio_to_init.get("median") is not None:
        r = d.ratio_to_init
        out["regions"] += f" · trained / init {F.num(r['median'])}" + (f" ({ci_text(r)})" if ci_text(r) else "")
    sp = v.spearman
    if sp:
        out["spearman"] = f"p = {F.num(sp['p_value'])}" + (f" · {ci_text({'ci95_low': sp['ci95_low'], 'ci95_high': sp['ci95_high']})}" if sp.get("ci95_low") is not None else "")
    return out


def init_table(result) -> Table | None:
    """Trained (all segments; the same first segments/points) beside init, with intervals."""
    ref = init_ref(result)
    if not ref:
        return None
    d, v, dist = result.density, result.deviation, result.distance
    m, p = ref["segments"], ref["points"]
    n = result.model.neurons
    segs, devs, pts = d.segments[:m], v.segments[:m], dist.points[:p]
    rows_src = [
        ("Regions per segment", d.summary, subset_summary([s.regions for s in segs]), _pooled(ref, "density", "summary")),
        ("Regions per unit length", d.per_length, subset_summary([s.density for s in segs]), _pooled(ref, "density", "per_length")),
        ("Regions per neuron", d.regions_per_neuron, subset_summary([s.regions / n for s in segs]) if n else None,
         _pooled(ref, "density", "regions_per_neuron")),
        ("Absolute deviation", v.summary, subset_summary([s.norm for s in devs]), _pooled(ref, "deviation", "summary")),
        ("Boundary distance", dist.summary, subset_summary([q.distance for q in pts]), _pooled(ref, "distance", "summary")),
        ("Distance × neurons", dist.scaled_summary, subset_summary([q.scaled for q in pts]), _pooled(ref, "distance", "scaled_summary")),
    ]

    def cell(s):
        if _median(s) is None:
            return "undefined"
        ci = ci_text(s)
        return F.num(s["median"]) + (f"  {ci.replace('95 % CI ', '')}" if ci else "")

    cut = len(reference_cut_short(ref, [s.truncated for s in segs]))
    rows = []
    for label, full, same, init in rows_src:
        if cut and label.startswith("Regions"):
            label += f" ({cut} of the {m} segments cut short: lower bounds)"
        ratio = (_median(same) / _median(init)) if _median(same) is not None and _median(init) not in (None, 0) else None
        rows.append([label, cell(full), cell(same), cell(init), F.num(ratio)])
    r = d.ratio_to_init
    if r:
        rows.append(["Trained / init regions per segment", "", cell(r), "", F.num(r.get("median"))])
    cols = ["median [95 % CI]", "trained, all", f"trained, same {m} segs / {p} pts",
            f"init ({ref['copies']} copies)", "trained / init"]
    return Table(cols, rows, numeric=[False, True, True, True, True])


def capacity_table(cap: dict | None) -> Table | None:
    """One row per bound: its count in input space, on a line and on a plane, and its formula."""
    if not cap:
        return None
    by_name = lambda part: {b["name"]: b for b in (cap.get(part) or {}).get("bounds") or []}  # noqa: E731
    line, plane = by_name("line"), by_name("plane")

    def value(b):
        return F.DASH if not b else (f"10^{b['log10']:.2f}" if b["covered"] else "not covered")

    rows = []
    for b in cap["bounds"]:
        rows.append([b["name"], b["kind"], value(b), value(line.get(b["name"])), value(plane.get(b["name"])),
                     b["formula"] if b["covered"] else b["reason"]])
    n0 = cap.get("input_dimension")
    return Table(["bound", "kind", f"input space (n₀ = {n0})", "a line (n₀ = 1)", "a plane (n₀ = 2)",
                  "formula (input space), or why it does not apply"], rows,
                 numeric=[False, False, True, True, True, False])


def capacity_lines(result) -> list[str]:
    cap = result.capacity
    if not cap:
        return []
    lines = []
    up, low = cap.get("log10_upper"), cap.get("log10_lower")
    if up is not None:
        lines.append(f"Tightest covered upper bound on regions in input space: 10^{up:.2f}" +
                     (f"; tightest lower bound 10^{low:.2f}." if low is not None else "."))
    elif not cap.get("covered"):
        lines.append(f"No bound covers this architecture: {cap.get('reason')}.")
    meas = cap.get("measured") or {}
    line_up = cap["line"].get("log10_upper")
    if meas.get("max_segment_regions") is not None:
        s = f"The most regions any measured segment crossed: {meas['max_segment_regions']:,}"
        if result.density.cut_segments:
            s += " (at least: segments were cut short)"
        if line_up is not None:
            s += f", against at most 10^{line_up:.2f} on any line"
        lines.append(s + ".")
    if meas.get("regions_per_length_per_neuron") is not None:
        lines.append(
            f"Regions per unit length per neuron (median density / neurons): {F.num(meas['regions_per_length_per_neuron'])}. "
            "Hanin & Rolnick (2019a) show that the boundaries a line crosses per unit length grow like the number of "
            "neurons, so this ratio (beside its init value above) takes width and depth out of the density."
        )
    if meas.get("slice_regions_per_area_per_neuron2") is not None:
        bound = ", a lower bound: the slice stopped early" if result.slice is not None and result.slice.truncated else ""
        lines.append(f"Slice regions per unit area per neuron²: {F.num(meas['slice_regions_per_area_per_neuron2'])}{bound} "
                     "(Hanin & Rolnick 2019b).")
    return lines


def class_table(result, which: str) -> Table | None:
    split = (result.density if which == "density" else result.deviation).by_class
    if not split:
        return None
    rows = []
    for key, label in (("same_class", "same class"), ("different_class", "different class")):
        part = split.get(key) or {}
        if which == "density":
            s, pl = part.get("summary"), part.get("per_length")
            rows.append([label, F.count(part.get("count", 0)), F.num(_median(s)), ci_text(s).replace("95 % CI ", ""),
                         F.num(_median(pl)), ci_text(pl).replace("95 % CI ", "")])
        else:
            s = part.get("summary")
            rows.append([label, F.count(part.get("count", 0)), F.num(_median(s)), ci_text(s).replace("95 % CI ", "")])
    cols = (["endpoints", "segments", "median regions", "95 % CI", "median regions / length", "95 % CI"] if which == "density"
            else ["endpoints", "segments", "median deviation", "95 % CI"])
    return Table(cols, rows, numeric=[False] + [True] * (len(cols) - 1))


def class_sentence(result) -> str:
    split = result.density.by_class
    if not split:
        return ""
    if split["source"] == "labels":
        return "Segments split by the labels of their two data rows (--labels)."
    return ("No labels were given: segments are split by the model's predicted classes at the two endpoints, "
            "so a segment counted as same-class may still cross a decision boundary and back.")


def layer_order(result) -> list[str]:
    return [n["name"] for n in result.model.nodes if n.get("kind") in KINK_KINDS]


def _units(result) -> dict[str, int]:
    """Units per kink node: ReLU-type units, or windows of a max node (one per output element)."""
    out = {}
    for n in result.model.nodes:
        if n.get("kind") in KINK_KINDS:
            out[n["name"]] = int(n.get("units") or math.prod(n.get("shape") or [1]))
    return out


def frame_plots(result, Plot, empty_segments: str, empty_points: str, no_deviation: str) -> list:
    """(a)-(e) and the deviation plots, trained and init overlaid."""
    d, v, dist = result.density, result.deviation, result.distance
    ref = init_ref(result)
    seeds = ref["per_seed"] if ref else []
    layers = layer_order(result)
    units = _units(result)
    out = []

    init_density = [x for s in seeds for x in s["segments"]["density"]] if seeds else None
    out.append(Plot(
        "density-hist", "Regions per unit length",
        "Share of segments by regions crossed per unit of input distance"
        + (" (filled: trained, all segments; outline: the architecture at initialisation on the first segments)" if seeds else "")
        + ". Dividing by length makes long and short segments comparable; dashed lines are the medians.",
        FP.overlaid_histogram("density-hist", [s.density for s in d.segments], init_density,
                              "Regions per unit length", "regions per unit length"),
        empty_segments,
    ))

    n_seg = len(d.segments)
    names = [k for k in layers if k in (d.knots_per_layer or {}) or any(k in s["knots_per_layer"] for s in seeds)]
    names = names or list((d.knots_per_layer or {}).keys())
    per_unit = [(d.knots_per_layer or {}).get(k, 0) / max(1, n_seg) / max(1, units.get(k, 1)) for k in names]
    init_per_unit = None
    if seeds and ref["segments"]:
        init_per_unit = [
            sum(s["knots_per_layer"].get(k, 0) for s in seeds) / (len(seeds) * ref["segments"]) / max(1, units.get(k, 1))
            for k in names
        ]
    out.append(Plot(
        "knots-per-layer-unit", "Knots per layer per unit",
        "Boundaries each kink layer puts on a segment, per segment and per unit of that layer (ReLU units, or MaxPool "
        "windows), so wide and narrow layers compare. Hanin & Rolnick (2019a) find this roughly equal across layers at "
        "initialisation" + ("; a layer far from its grey bar is where training changed the partition most." if seeds else "."),
        FP.layer_bars("knots-per-layer-unit", names, per_unit, init_per_unit, "Knots per segment per unit", "knots per segment per unit"),
        empty_segments if not d.segments else "No knots were recorded.",
    ))

    profiles = [("trained", d.profile)] + ([("at initialisation", ref.get("profile"))] if ref and ref.get("profile") else [])
    idx = d.profile.get("segment") if d.profile else None
    cut = idx is not None and 0 <= idx < len(d.segments) and d.segments[idx].truncated
    out.append(Plot(
        "segment-profile", "One segment, knot by knot",
        f"Segment {idx} (the one whose region count is closest to the median): the top logits along the segment, "
        + ("drawn straight between the knots kept when the segment was cut short (see the notes): "
           "knots left out lie between them, so the curve is not exactly the network's and its knot count is a "
           "lower bound" if cut else
           "exact (they are affine between knots)")
        + ", and each knot as a tick coloured by the layer that made it "
        "(the line through input space of Hanin & Rolnick 2019a)."
        + (" The lower panel is the same segment through the network at initialisation." if len(profiles) > 1 else ""),
        FP.segment_profile("segment-profile", profiles, layers, "Knots along one segment"),
        empty_segments,
    ))

    trained_pts = [(q.distance, q.node) for q in dist.points]
    init_pts = [(x, nd) for s in seeds for x, nd in zip(s["points"]["distance"], s["points"]["nearest_node"])]
    same = _plateau(dist.points)
    exact = "Approximate" if getattr(dist, "method", "exact") == "approx" else "Exact"
    caption = (f"{exact} distance from each point to the boundary of its activation region{F.approx_words(dist)}, "
               "sorted, coloured by the layer that holds its nearest boundary"
               + (" (filled: trained; hollow: at initialisation)." if init_pts else "."))
    if same:
        caption += (f" {same[0]} points share the same distance {F.num(same[1])} to 6 digits: points whose nearest "
                    "boundary is a unit of the same filter over identical input (e.g. a blank patch of image background) sit at the same "
                    "distance; this is in the data, not an artefact of the plot.")
    out.append(Plot(
        "nearest-layer", "Which layer holds the nearest boundary",
        caption,
        FP.nearest_layer("nearest-layer", trained_pts, init_pts, layers, "Nearest boundary, by layer"),
        empty_points,
    ))

    if d.paths:
        out.append(Plot(
            "loops-plot", "Translation loops",
            "Boundaries crossed around each closed loop of shifted copies of an image (Novak et al. 2018), "
            "stacked by the layer that made them.",
            FP.loops_plot("loops-plot", [{"knots_per_layer": p.knots_per_layer} for p in d.paths], layers,
                          "Boundaries crossed per translation loop"),
            "No loops were measured.",
        ))

    init_dev = [x for s in seeds for x in s["segments"]["deviation"]]
    series = [("trained", [s.norm for s in v.segments], FP.BLUE, "-")]
    if init_dev:
        series.append(("at initialisation", init_dev, FP.INIT, "--"))
    out.append(Plot(
        "deviation-ecdf", "Absolute deviation from linear",
        "Empirical CDF of each segment's absolute deviation (Gamba et al. 2022), L2 over outputs"
        + ("; trained solid, init dashed. Init logits have a different scale than trained ones, so compare the shapes "
           "more than the values." if init_dev else "."),
        FP.overlaid_ecdf("deviation-ecdf", series, "Absolute deviation (ECDF)", "absolute deviation, L2 over outputs"),
        no_deviation,
    ))
    rho = v.spearman_density
    title = "Density vs deviation" + (f" (Spearman ρ = {F.num(rho)})" if rho is not None else " (Spearman ρ undefined)")
    n = min(len(d.segments), len(v.segments))
    init_xy = ([x for s in seeds for x in s["segments"]["density"]], init_dev) if seeds else None
    out.append(Plot(
        "density-vs-deviation", "Density vs deviation",
        "Each dot is one segment: regions per unit length against absolute deviation"
        + (" (hollow grey: at initialisation)." if seeds else "."),
        FP.scatter_overlay("density-vs-deviation", ([d.segments[i].density for i in range(n)], [v.segments[i].norm for i in range(n)]),
                           init_xy, title, "regions per unit length", "absolute deviation"),
        no_deviation,
    ))
    return out


def _plateau(points) -> tuple[int, float] | None:
    """The most common distance (to 6 significant digits) when at least 5 % of points (and 3) share it."""
    vals = [q.distance for q in points if q.distance is not None and q.distance > 0]
    if not vals:
        return None
    counts: dict[str, list[float]] = {}
    for x in vals:
        counts.setdefault(f"{x:.6g}", []).append(x)
    key, xs = max(counts.items(), key=lambda kv: len(kv[1]))
    if len(xs) >= max(3, 0.05 * len(vals)):
        return len(xs), xs[0]
    return None


# --- compare: overlays, paired scatter, tests, per-layer table ---------------------------------


def compare_tests_table(paired) -> Table:
    rows = []
    for label, m in (("Regions per segment", paired.density), ("Absolute deviation", paired.deviation),
                     ("Boundary distance (same points)", paired.distance)):
        if m is None:
            rows.append([label, "0", F.DASH, F.DASH, "", F.DASH, F.DASH])
            continue
        t = m.tests or {}
        n = m.pairs
        rows.append([label, F.count(n), F.percent(m.fraction_positive), F.num(_median(m.summary)),
                     ci_text(m.summary).replace("95 % CI ", ""), F.num(t.get("wilcoxon_p_value")), F.num(t.get("sign_test_p_value"))])
    return Table(["Paired B − A", "pairs", "B larger", "median B − A", "95 % CI", "Wilcoxon p", "sign-test p"], rows,
                 numeric=[False, True, True, True, True, True, True])


def compare_layer_table(a, b) -> Table | None:
    """Knots per segment per layer side by side, when both models have the same kink nodes. Each
    model's units are shown: two widths of one architecture have the same node names."""
    la, lb = layer_order(a), layer_order(b)
    if not la or la != lb:
        return None
    ua, ub = _units(a), _units(b)
    na, nb = max(1, len(a.density.segments)), max(1, len(b.density.segments))
    rows = []
    for name in la:
        ka, kb = (a.density.knots_per_layer or {}).get(name, 0) / na, (b.density.knots_per_layer or {}).get(name, 0) / nb
        rows.append([name, F.count(ua.get(name, 0)), F.count(ub.get(name, 0)), F.num(ka), F.num(kb), F.num(kb - ka),
                     F.num(ka / max(1, ua.get(name, 1))), F.num(kb / max(1, ub.get(name, 1)))])
    return Table(["kink layer", "A units", "B units", "A knots / segment", "B knots / segment", "B − A", "A per unit",
                  "B per unit"], rows, numeric=[False] + [True] * 7)


def compare_plots(result, Plot, name_a: str, name_b: str) -> list:
    a, b = result.a, result.b
    colours = f"{name_a} solid blue, {name_b} dashed orange"
    out = []
    for pid, title, xa, xb, xlabel in (
        ("cmp-density-ecdf", "Regions per segment", [s.regions for s in a.density.segments], [s.regions for s in b.density.segments], "regions per segment"),
        ("cmp-deviation-ecdf", "Absolute deviation", [s.norm for s in a.deviation.segments], [s.norm for s in b.deviation.segments], "absolute deviation"),
        ("cmp-distance-ecdf", "Boundary distance", [p.distance for p in a.distance.points], [p.distance for p in b.distance.points], "distance to nearest boundary"),
    ):
        out.append(Plot(pid, f"{title}: A and B", f"Empirical CDFs on the same probes ({colours}); a curve to the right holds larger values.",
                        FP.overlaid_ecdf(pid, [(f"A: {name_a}", xa, FP.BLUE, "-"), (f"B: {name_b}", xb, FP.ORANGE, "--")],
                                         f"{title} (ECDF)", xlabel),
                        "Nothing was measured."))
    out.append(Plot("cmp-density-scatter", "Per segment: A against B",
                    "Each dot is one segment: regions crossed in A (x) and in B (y); dots above the dashed y = x line are segments where B has more regions.",
                    FP.paired_scatter("cmp-density-scatter", [s.regions for s in a.density.segments], [s.regions for s in b.density.segments],
                                      "Regions per segment, B against A", f"A: {name_a}", f"B: {name_b}"),
                    "No segments were measured."))
    out.append(Plot("cmp-distance-scatter", "Per point: boundary distance in A against B",
                    "Each dot is one point: its distance to the nearest boundary in A (x) and in B (y), the same point in both; above y = x, B's region around it is larger.",
                    FP.paired_scatter("cmp-distance-scatter", [p.distance for p in a.distance.points], [p.distance for p in b.distance.points],
                                      "Boundary distance, B against A", f"A: {name_a}", f"B: {name_b}"),
                    "No points were measured."))
    return out


def section_sentences(result) -> dict[str, str]:
    """Per report section, one sentence putting the trained median beside the init one, on the same probes."""
    ref = init_ref(result)
    if not ref:
        return {}
    d, v, dist = result.density, result.deviation, result.distance
    m, p = ref["segments"], ref["points"]
    cut = reference_cut_short(ref, [s.truncated for s in d.segments])
    out = {}
    for key, trained, init, what, where, reading in (
        ("density", subset_summary([s.density for s in d.segments[:m]]), _pooled(ref, "density", "per_length"),
         "regions per unit length", f"the first {m} segments",
         "a ratio above 1 means training added boundaries near the data"),
        ("deviation", subset_summary([s.norm for s in v.segments[:m]]), _pooled(ref, "deviation", "summary"),
         "absolute deviation", f"the first {m} segments",
         "deviation is in logit units, which training rescales, so the ratio mixes curvature and scale"),
        ("distance", subset_summary([q.distance for q in dist.points[:p]]), _pooled(ref, "distance", "summary"),
         "boundary distance", f"the first {p} points",
         "a ratio above 1 means the data sit in larger regions than at initialisation"),
    ):
        if key == "density" and m and len(cut) == m:
            out[key] = (f"On {where}, the trained and initial densities are not compared: every one was cut short in the "
                        "model or a copy (see the notes), and their counts are lower bounds.")
            continue
        if _median(trained) is None or _median(init) is None:
            continue
        ratio = _median(trained) / _median(init) if _median(init) else None
        out[key] = (f"On {where}, median {what} is {F.num(_median(trained))} trained against "
                    f"{F.num(_median(init))} at initialisation (ratio {F.num(ratio)}); {reading}"
                    + (f" ({len(cut)} of them cut short: their counts are lower bounds)." if key == "density" and cut
                       else "."))
    return out
