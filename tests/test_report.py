"""HTML report: self-contained, escaped, every plot inline, robust to empty results."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np
import pytest

from regionaudit.errors import BadOption
from regionaudit.outputs import OutputRequest, write_outputs
from regionaudit.report.html import render_compare_html, render_html
from fake_results import NASTY, empty_result, max_knots_note, nasty_result, sample_compare, sample_result, truncated_result

AUDIT_PLOTS = [
    "density-hist",
    "knots-per-layer-unit",
    "segment-profile",
    "nearest-layer",
    "loops-plot",
    "deviation-ecdf",
    "density-vs-deviation",
    "slice",
]
VOID = {"meta", "link", "br", "hr", "img", "input", "col", "area", "base", "source", "wbr", "embed", "track", "param"}


class Collector(HTMLParser):
    """Tags, attributes and tag balance of an HTML page (SVG children are self-closed or paired)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.styles: list[str] = []
        self._in_style = False
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)
        self._in_style = tag == "style"

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unbalanced </{tag}> (open: {self.stack[-3:]})")
        else:
            self.stack.pop()
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)
        self.text.append(data)


def parse(html: str) -> Collector:
    c = Collector()
    c.feed(html)
    c.close()
    return c


@pytest.fixture(scope="module")
def sample_html():
    return render_html(sample_result())


@pytest.fixture(scope="module")
def empty_html():
    return render_html(empty_result())


@pytest.fixture(scope="module")
def nasty_html():
    return render_html(nasty_result())


def external_references(html: str) -> list[str]:
    """src/href/url(...)/@import that point outside the page."""
    found = []
    c = parse(html)
    for tag, attrs in c.tags:
        for name, value in attrs.items():
            if name.split(":")[-1] in ("src", "href", "srcset", "data", "action", "poster", "background") and value:
                if not value.startswith("#"):
                    found.append(f"<{tag} {name}={value!r}>")
            if name == "style" and value and re.search(r"url\(\s*['\"]?(?!#)", value):
                found.append(f"<{tag} style={value!r}>")
    css = "\n".join(c.styles)
    found += re.findall(r"url\(\s*['\"]?(?!#)[^)]*\)", css)
    found += re.findall(r"@import[^;]*;", css)
    found += re.findall(r"@font-face", css)
    return found


@pytest.mark.parametrize("which", ["sample", "empty", "nasty"])
def test_html_is_balanced_and_self_contained(which, sample_html, empty_html, nasty_html):
    html = {"sample": sample_html, "empty": empty_html, "nasty": nasty_html}[which]
    c = parse(html)
    assert not c.errors, c.errors[:5]
    assert c.stack == [], c.stack
    assert html.startswith("<!DOCTYPE html>")
    assert external_references(html) == []
    assert not re.search(r"<\s*script", html, re.I)
    assert not re.search(r"<\s*(iframe|object|embed|link)\b", html, re.I)
    assert not re.search(r"(src|href)\s*=\s*['\"]?\s*(https?:|//|file:|javascript:)", html, re.I)
    # every id is unique (several inline SVGs share one DOM)
    ids = [attrs["id"] for _, attrs in c.tags if "id" in attrs]
    dupes = {i for i in ids if ids.count(i) > 1}
    assert not dupes, sorted(dupes)[:10]


def test_every_plot_is_inline_svg(sample_html):
    svgs = re.findall(r"<svg\b.*?</svg>", sample_html, re.S)
    assert len(svgs) == len(AUDIT_PLOTS)
    for plot_id in AUDIT_PLOTS:
        assert f'id="plot-{plot_id}"' in sample_html, plot_id
        assert '<figure class="plot' in sample_html
    titles = {
        "density-hist": "Regions per unit length",
        "knots-per-layer-unit": "Knots per segment per unit",
        "segment-profile": "Knots along one segment",
        "nearest-layer": "Nearest boundary, by layer",
        "loops-plot": "Boundaries crossed per translation loop",
        "deviation-ecdf": "Absolute deviation (ECDF)",
        "density-vs-deviation": "Spearman ρ = ",
        "slice": "2-D slice: 49 regions",
    }
    for svg in svgs:
        root = ET.fromstring(svg)  # each SVG is well-formed XML on its own
        assert root.tag.endswith("svg")
        plot_id = root.get("id").removeprefix("plot-")
        assert titles[plot_id] in svg, plot_id
        assert "<!DOCTYPE" not in svg and "<?xml" not in svg


def test_headline_sentences_and_sections(sample_html):
    r = sample_result()
    med = int(r.density.summary["median"])
    assert f"Median {med} linear regions along a segment between two data points (p10" in sample_html
    assert "Median distance" in sample_html
    assert "Median absolute deviation" in sample_html
    assert "Spearman ρ = " in sample_html
    assert "Data is used as given" in sample_html
    assert "Trailing Softmax stripped" in sample_html  # model notes shown
    assert "1 of 2 gates failed" in sample_html
    for word in ("torch", "onnxruntime", "numpy", "onnx"):
        assert f"<th>{word}</th>" in sample_html
    assert "3f7a9c0e5b1d" in sample_html  # short hash in the header
    assert "fc1/Relu/MatMul" in sample_html  # node table
    assert "Closed translation loops" in sample_html


def test_max_knots_note_shown_once():
    """The report shows the audit's own --max-knots note and invents no second one."""
    r = truncated_result(max_knots=64)
    html = render_html(r)
    assert html.count(max_knots_note(64)) == 1
    assert html.count("--max-knots") == sum(n.count("--max-knots") for n in r.notes)  # none invented


def test_kink_nodes_highlighted(sample_html):
    """ReLU-type rows of the node table (IR kind "relu") are marked; MatMul rows are not."""
    rows = re.findall(r"<tr( class=\"kink\")?>\s*<td[^>]*>\d+</td>\s*<td[^>]*>(\w+)</td>", sample_html)
    kinds = {(kind, bool(cls)) for cls, kind in rows}
    assert ("relu", True) in kinds and ("matmul", False) in kinds and ("input", False) in kinds
    assert ("relu", False) not in kinds and ("matmul", True) not in kinds


def test_empty_result_renders_without_plots(empty_html):
    assert "<svg" not in empty_html
    assert "No segments were measured." in empty_html
    assert "No points were measured." in empty_html
    assert "no ReLU-type units" in empty_html
    assert "Synthetic probes." in empty_html
    assert "nan" not in re.sub(r"<[^>]+>", "", empty_html).lower().split()


def test_nasty_strings_are_escaped(nasty_html):
    assert NASTY not in nasty_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in nasty_html
    assert "<img" not in nasty_html
    assert "<iframe" not in nasty_html
    assert "evil.example" in nasty_html  # shown as text, not as a link
    # node names inside SVG text are XML-escaped too
    for svg in re.findall(r"<svg\b.*?</svg>", nasty_html, re.S):
        ET.fromstring(svg)
    # a `$...$` layer name is drawn literally, not as mathtext
    assert "$x^2$" in nasty_html


def test_render_is_deterministic():
    assert render_html(sample_result(n_segments=10, n_points=10)) == render_html(sample_result(n_segments=10, n_points=10))


def test_write_html(tmp_path):
    out = tmp_path / "r.html"
    write_outputs(sample_result(n_segments=10, n_points=10), [OutputRequest("html", out)])
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert (out.stat().st_mode & 0o044) == 0o044 or (out.stat().st_mode & 0o600) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]  # no temporary left behind


def test_write_html_missing_folder(tmp_path):
    with pytest.raises(BadOption):
        write_outputs(sample_result(n_segments=5, n_points=5), [OutputRequest("html", tmp_path / "nope" / "r.html")])


def test_none_everywhere_never_crashes():
    r = sample_result(n_segments=5, n_points=5)
    r.density.summary = r.density.per_length = r.density.regions_per_neuron = None
    r.deviation.summary = r.deviation.spearman_density = None
    r.distance.summary = r.distance.scaled_summary = None
    r.distance.points[0].distance = None
    r.distance.points[1].scaled = None
    r.density.segments[0].density = None
    r.model.validation = {}
    r.slice.polygons = None  # read back from a JSON written without --keep-polygons
    r.slice.regions = 3
    r.timing = {"nested": {"a": 1.5}, "text": "n/a"}
    html = render_html(r)
    assert "The picture needs the polygons, which this result does not hold (3 regions counted)." in html
    assert parse(html).errors == []


def test_single_value_and_zero_distance_plots():
    r = sample_result(n_segments=3, n_points=3, with_slice=False)
    for s in r.density.segments:
        s.regions = 7
    r.distance.points[0].distance = 0.0
    html = render_html(r)
    assert "at exactly 0 (not shown)" in html
    assert html.count("<svg") == 7


def test_many_layers_and_many_polygons():
    names = [f"block{i}/relu" for i in range(60)]
    r = sample_result(n_segments=8, n_points=8, layer_names=names)
    html = render_html(r)
    assert "more layers" in html


def test_compare_html(tmp_path):
    html = render_compare_html(sample_compare())
    c = parse(html)
    assert not c.errors and c.stack == []
    assert external_references(html) == []
    # two paired histograms, three A/B ECDF overlays, two A-against-B scatters
    assert html.count("<svg") == 7
    assert 'id="plot-paired-density"' in html and 'id="plot-paired-deviation"' in html
    for pid in ("cmp-density-ecdf", "cmp-deviation-ecdf", "cmp-distance-ecdf", "cmp-density-scatter", "cmp-distance-scatter"):
        assert f'id="plot-{pid}"' in html
    assert "Wilcoxon p" in html and "blue bars where A is larger" in html
    assert "of segments" in html and "B − A" in html
    out = tmp_path / "a-vs-b.regionaudit.html"
    write_outputs(sample_compare(), [OutputRequest("html", out)])
    assert out.read_text(encoding="utf-8") == html


def test_templates_are_package_resources():
    from importlib import resources

    root = resources.files("regionaudit.templates")
    for name in ("report.html.j2", "compare.html.j2", "card.md.j2", "report.css", "_macros.html.j2"):
        assert root.joinpath(name).is_file(), name


def test_deviation_cut_short_everywhere_is_explained():
    """When --max-knots cut every segment, the report says so instead of "no segments"."""
    from regionaudit.result import SegmentDeviation

    r = truncated_result(max_knots=8)
    for seg in r.density.segments:
        seg.truncated = True
    r.deviation.segments = [SegmentDeviation(per_output=None, norm=None) for _ in r.deviation.segments]
    r.deviation.summary, r.deviation.spearman_density = None, None
    html = render_html(r)
    assert html.count("Every segment was cut short by --max-knots.") >= 2  # headline and the plots
    assert "No segments were measured" not in html


def test_a_median_over_cut_segments_is_marked_a_lower_bound():
    """Segments stopped by --max-knots: the headline, the card and the terminal say the median is
    a lower bound (the note names the option, once); a full audit says nothing of the kind."""
    r = truncated_result(max_knots=64)
    cut = sum(seg.truncated for seg in r.density.segments)
    assert 0 < cut
    from regionaudit.report.card import render_card

    html, md = render_html(r), render_card(r, None)
    assert f"{cut} of {len(r.density.segments)} segments were cut short (see the notes)" in html
    assert "median, a lower bound" in html and "(median, a lower bound: segments were cut short" in md
    for seg in r.density.segments:
        seg.truncated = False
    assert "segments were cut short" not in render_html(r) + render_card(r, None)


def test_a_spearman_rho_without_evidence_is_not_called_strong():
    """rho = -0.8 over four segments has p = 0.2: the headline says there is no evidence, and
    says nothing about strength."""
    r = sample_result(n_segments=12, n_points=12, with_slice=False)
    r.deviation.spearman_density = -0.8
    r.deviation.spearman = {"rho": -0.8, "p_value": 0.2, "ci95_low": -1.0, "ci95_high": 1.0}
    html = render_html(r)
    assert "no evidence of a relation either way (p = 0.2)" in html
    assert "strongly" not in html and "tend to deviate less" not in html
    r.deviation.spearman["p_value"] = 0.001
    assert "strongly tend to deviate less" in render_html(r)


@pytest.mark.parametrize("values,integer,colours", [
    ([-3, -1, 0, 0, 1, 2, 2, 5], True, {"blue", "orange", "grey"}),
    ([-40, -3, 0, 1, 2, 60, 61, 3], True, {"blue", "orange", "grey"}),  # bars wider than 1: the ties keep their own
    ([0.0, 0.0, 0.25, 1e-3], False, {"orange", "grey"}),  # float ties are not in the first positive bar
    ([0.7], False, {"orange"}),  # a single positive difference is no tie
    ([-2.0, -2.0], False, {"blue"}),
    ([0, 0, 0], True, {"grey"}),
])
def test_paired_histogram_colours_each_sign_apart(values, integer, colours):
    """Orange bars hold only B > A, blue only A > B, the grey bar only ties: before, a bar could
    straddle 0 (grey, holding non-ties), and a tie fell into the first positive bar."""
    from regionaudit.report import plots

    svg = plots.paired_histogram("p", values + [None], "t", "x", integer)
    fills = {name for name, colour in (("blue", plots.BLUE), ("orange", plots.ORANGE), ("grey", "#9aa5b1"))
             if f"fill: {colour}" in svg}
    assert fills == colours
    counted = 0
    for v, edges, colour in plots.paired_groups(np.asarray(values, dtype=float), integer):
        assert (colour == plots.BLUE and v.max() < 0 and edges[-1] <= 0) or colour == "tie" or (
            colour == plots.ORANGE and v.min() > 0 and edges[0] >= 0)
        counted += v.size if edges is None else int(np.histogram(v, bins=edges)[0].sum())
    assert counted == len(values)  # every value in a bar of its side


@pytest.mark.parametrize("values", [[-0.6, 1.8], [-0.45, 0.75], [1.0, 1.0001] * 4, [1000, 1001, 1002, 1003], [5e-324, 1e-323]])
def test_paired_histogram_keeps_every_value_in_few_bins(values):
    """Bins counted from 0 lost the largest value to rounding (1.8 past an edge of 1.7999999999999998)
    and made 80 009 bins for values near 1 differing by 1e-4; each side is binned over its own range."""
    from regionaudit.report import plots

    arr = np.asarray(values, dtype=float)
    groups = plots.paired_groups(arr, integer=all(float(v).is_integer() for v in values))
    assert sum(int(np.histogram(v, bins=e)[0].sum()) for v, e, _ in groups) == arr.size
    assert max(len(e) for _, e, _ in groups) <= 41
    assert plots.paired_histogram("p", values, "t", "x", False) is not None


def test_percentages_keep_the_number_formats_digits():
    from regionaudit.report.formatting import percent

    assert [percent(x) for x in (1 / 8, 7 / 8, 1 / 3, 1, 0, None)] == ["12.5%", "87.5%", "33.33%", "100%", "0%", "—"]
    assert percent(0.99996) == ">99.99%"  # (not all)


def test_captions_say_what_the_figures_draw():
    """A profile segment cut short is not drawn as exact; a stopped slice's polygons may hold several
    regions; with no decision boundary in the box no black line is promised."""
    html = render_html(truncated_result(max_knots=64))  # its profile is segment 0, which was cut short
    assert "drawn straight between the knots kept when the segment was cut short" in html
    r = sample_result(n_segments=12, n_points=12)
    assert "the thick black line is the decision boundary" in render_html(r)
    r.slice.truncated, r.slice.decision_boundary = True, {"pieces": 0, "length": 0.0}
    html = render_html(r)
    assert "a polygon left unsplit may hold several regions" in html
    assert "no decision boundary was found in the part partitioned" in html and "the thick black line" not in html
    r.slice.truncated, r.slice.classes = False, {"3": r.slice.regions}
    assert "no decision boundary crosses the box: one class holds it" in render_html(r)
    from regionaudit.report.framecontext import capacity_lines

    r.slice.truncated = True
    r.capacity = {"bounds": [], "covered": False, "reason": "test", "line": {}, "plane": {},
                  "measured": {"slice_regions_per_area_per_neuron2": 0.5}}
    assert any("0.5, a lower bound: the slice stopped early" in line for line in capacity_lines(r))
    r.slice.truncated = False
    assert not any("lower bound" in line for line in capacity_lines(r))


def test_compare_p_values_have_the_reports_four_significant_digits():
    """A p of 0.0496 read "0.05" (two digits) beside a `wilcoxon_p_value < 0.05` gate that passed."""
    from dataclasses import replace

    from regionaudit.report.framecontext import compare_tests_table

    cmp = sample_compare()
    tests = {"wilcoxon_statistic": 3.0, "wilcoxon_p_value": 0.0496, "sign_test_nonzero": 9, "sign_test_positive": 2,
             "sign_test_p_value": 0.083984375}
    paired = replace(cmp.paired, density=replace(cmp.paired.density, tests=tests))
    row = compare_tests_table(paired).rows[0]
    assert row[-2:] == ["0.0496", "0.08398"]


def test_compare_per_layer_table_shows_each_models_units():
    """Two widths of one architecture share their kink nodes' names: each row shows A's and B's
    units, so that B's per-unit knots read against B's width."""
    from regionaudit.report.framecontext import compare_layer_table

    cmp = sample_compare()
    layer = next(n for n in cmp.b.model.nodes if n["kind"] == "relu")
    width_a = next(n["units"] for n in cmp.a.model.nodes if n["name"] == layer["name"])
    layer["units"] = 4 * width_a
    table = compare_layer_table(cmp.a, cmp.b)
    row = next(r for r in table.rows if r[0] == layer["name"])
    assert table.columns[1:3] == ["A units", "B units"]
    assert row[1:3] == [f"{width_a:,}", f"{4 * width_a:,}"]
    knots_b = cmp.b.density.knots_per_layer[layer["name"]] / len(cmp.b.density.segments)
    assert float(row[-1]) == pytest.approx(knots_b / (4 * width_a), rel=1e-3)


def test_the_reports_time_says_what_it_counts():
    """A report cannot time its own layout into PDF, which the JSON's `timing.report_s` counts: its
    row says it holds the plots and tables (before, "report 4.59 s" beside a JSON of 13.61 s)."""
    from regionaudit.report.context import audit_context

    ticks = iter([10.0, 12.5])
    ctx = audit_context(sample_result(), clock=lambda: next(ticks))
    rows = dict(ctx["timing"])
    assert rows["report (its plots and tables)"] == "2.50 s" and "report" not in rows


@pytest.mark.parametrize("cut", [3, 10])
def test_init_comparisons_over_segments_cut_short_say_so(cut):
    """Segments cut short in the model or a copy hold lower bounds: the density sentence and the
    init table say how many, and with all of them cut the report compares nothing (the JSON's
    ratio is null then), rather than "49.13 trained against 49.13 at initialisation (ratio 1)"."""
    from regionaudit.report.framecontext import init_table, section_sentences

    r = sample_result(n_segments=10, n_points=5)
    for i in range(cut):
        r.reference["init"]["per_seed"][0]["segments"]["truncated"][i] = True
    sentence = section_sentences(r)["density"]
    labels = [row[0] for row in init_table(r).rows]
    if cut == 10:
        assert sentence == ("On the first 10 segments, the trained and initial densities are not compared: every one was cut "
                            "short in the model or a copy (see the notes), and their counts are lower bounds.")
    else:
        assert sentence.endswith(" (3 of them cut short: their counts are lower bounds).")
    assert labels[0] == f"Regions per segment ({cut} of the 10 segments cut short: lower bounds)"
    assert labels[3] == "Absolute deviation"


def test_no_comparison_is_said_over_no_reference_segment():
    """With no segment (points only), the reference compares no density: before, the report said
    "On the first 0 segments, ... every one was cut short"."""
    from regionaudit.report.framecontext import section_sentences

    r = sample_result(n_segments=10, n_points=5)
    r.reference["init"]["segments"] = 0
    assert "density" not in section_sentences(r)


def test_the_footer_calls_approximate_distances_approximate():
    """With --distance approx the footer does not call the distances exact (the notes say how
    approximate they are); with exact ones it does."""
    def footer(html):
        return " ".join(re.search(r"<footer>(.*?)</footer>", html, re.S).group(1).split())

    exact = sample_result()
    assert "Region counts, distances and deviations are exact" in footer(render_html(exact))
    approx = sample_result()
    approx.distance.method, approx.distance.directions, approx.distance.relative_error = "approx", 256, 0.15
    said = footer(render_html(approx))
    assert "distances and deviations are exact" not in said
    assert "Region counts and deviations are exact" in said and "boundary distances are approximate" in said
    cmp = sample_compare()
    cmp.b.distance.method, cmp.b.distance.directions, cmp.b.distance.relative_error = "approx", 256, 0.15
    assert "boundary distances are approximate" in footer(render_compare_html(cmp))


def test_a_stopped_slices_growing_numbers_are_lower_bounds_in_the_report_as_in_the_card():
    """Where --max-regions stopped the partition, the report's slice table marks regions per unit
    area and boundary length as lower bounds, as the model card does, not only the region count."""
    from regionaudit.report.card import render_card
    from regionaudit.report.context import audit_context

    r = sample_result()
    r.slice.truncated = True
    facts = dict(audit_context(r)["slice"])
    for label in ("Regions", "Regions per unit area", "Boundary length"):
        assert facts[label].endswith("(lower bound: --max-regions reached)"), label
    card = render_card(r)
    assert "| Slice regions per unit area | 12.25 (a lower bound" in card and facts["Regions per unit area"].startswith("12.25 ")
    r.slice.truncated = False
    assert not any("lower bound" in v for v in dict(audit_context(r)["slice"]).values())
