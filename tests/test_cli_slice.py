"""The 2-D slice from the command line: JSON section, picture files, report section, gates, errors."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from clirun import run
from conftest import make_model

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"
SPIRALS = SAMPLES / "spirals_mlp.onnx"
SPIRAL_DATA = SAMPLES / "spirals_test.npy"
MLP = SAMPLES / "digits_mlp.onnx"
DIGITS = SAMPLES / "digits_test.npy"
FAST = ["--pairs", 2, "--max-points", 2, "-q"]


def test_two_d_model_json_picture_and_report(tmp_path, capsys):
    png, svg, html, out = tmp_path / "slice.png", tmp_path / "slice.svg", tmp_path / "r.html", tmp_path / "r.json"
    code, stdout, err = run([SPIRALS, "--data", SPIRAL_DATA, *FAST, "--slice-png", png, "-o", html, "--json", out,
                             "--keep-polygons"], capsys)
    assert code == 0, err
    assert "2-D slice:" in stdout
    sl = json.loads(out.read_text())["slice"]
    data = np.load(SPIRAL_DATA)
    lo, hi = data.min(0), data.max(0)
    pad = 0.1 * (hi - lo)
    assert sl["box"] == pytest.approx({"xmin": lo[0] - pad[0], "xmax": hi[0] + pad[0], "ymin": lo[1] - pad[1], "ymax": hi[1] + pad[1]})
    area = (sl["box"]["xmax"] - sl["box"]["xmin"]) * (sl["box"]["ymax"] - sl["box"]["ymin"])
    assert sl["regions"] == len(sl["polygons"]) > 10 and not sl["truncated"]
    assert sum(p["area"] for p in sl["polygons"]) == pytest.approx(area, rel=1e-9)
    assert sl["regions_per_unit_area"] == pytest.approx(sl["regions"] / area)
    assert sum(sl["classes"].values()) == sl["regions"]
    assert sum(sl["boundary_length_per_layer"].values()) == pytest.approx(sl["boundary_length"])
    assert sl["decision_boundary"]["pieces"] == len(sl["decision_segments"]) > 0
    ids = [p["activation"] for p in sl["polygons"]]
    assert len(set(ids)) == len(ids) and all(len(h) == 40 for h in ids)
    # the three points are data rows, with their predicted classes, at their own coordinates
    assert np.allclose(sl["points"], data[sl["point_rows"]])
    assert len(set(sl["point_classes"])) == 2  # the spirals model has two classes
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 20_000
    page = html.read_text(encoding="utf-8")
    assert '<section id="slice">' in page and 'id="plot-slice"' in page and "How to read it" in page
    # the same picture as SVG
    code, _, err = run([SPIRALS, "--data", SPIRAL_DATA, *FAST, "--slice-png", svg, "--json", tmp_path / "s.json"], capsys)
    assert code == 0, err
    root = ET.fromstring(svg.read_text(encoding="utf-8"))
    assert root.tag.endswith("svg")
    # without --keep-polygons the JSON holds no polygons, but the same numbers
    again = json.loads((tmp_path / "s.json").read_text())["slice"]
    assert again["polygons"] is None and again["regions"] == sl["regions"]


def test_slice_through_three_data_rows_is_gateable(tmp_path, capsys):
    out = tmp_path / "r.json"
    code, _, err = run([MLP, "--data", DIGITS, *FAST, "--json", out, "--fail-if", "slice.regions > 5",
                        "--fail-if", "slice.decision_boundary.length < 0"], capsys)
    assert code == 1
    assert "FAIL slice.regions > 5" in err and "pass slice.decision_boundary.length < 0" in err
    r = json.loads(out.read_text())
    sl = r["slice"]
    assert len(set(sl["point_classes"])) == 3  # three different predicted classes
    assert sl["box"]["half_width"] > 0 and len(sl["box"]["axes"]) == 2 and len(sl["box"]["centre"]) == 64
    assert r["settings"]["slice"] is True and r["settings"]["slice_scale"] == 1.25
    assert r["settings"]["max_regions"] == 200000
    code, stdout, _ = run(["metrics", out], capsys)
    assert code == 0
    paths = stdout.split()
    for p in ("slice.regions", "slice.area.median", "slice.regions_per_unit_area", "slice.decision_boundary.length",
              "slice.box.half_width"):
        assert p in paths
    assert any(p.startswith("slice.boundary_length_per_layer.") for p in paths)
    code, stdout, _ = run(["metrics"], capsys)
    assert "slice.regions" in stdout.split()


def test_slice_points_file_scale_and_truncation(tmp_path, capsys):
    rows = np.load(DIGITS)[[0, 5, 9]]
    points = tmp_path / "p.npy"
    np.save(points, rows)
    out = tmp_path / "r.json"
    code, _, err = run([MLP, "--data", DIGITS, *FAST, "--json", out, "--slice-points", points, "--slice-scale", 2,
                        "--max-regions", 20], capsys)
    assert code == 0, err
    r = json.loads(out.read_text())
    sl = r["slice"]
    assert sl["truncated"] and sl["regions"] >= 20 and sl["point_rows"] is None and sl["source"] == "file"
    assert any("--max-regions" in n for n in r["notes"])
    assert r["settings"]["slice_points_sha256"] == hashlib.sha256(points.read_bytes()).hexdigest()
    uv = np.asarray(sl["points"])
    radius = np.linalg.norm(uv, axis=1)
    assert np.allclose(radius, radius[0]) and sl["box"]["half_width"] == pytest.approx(2 * radius[0])


def test_no_slice_and_synthetic_slice(tmp_path, capsys):
    code, _, err = run([MLP, "--no-slice", *FAST, "--json", tmp_path / "a.json"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "a.json").read_text())["slice"] is None
    code, _, err = run([MLP, *FAST, "--json", tmp_path / "b.json"], capsys)
    assert code == 0, err
    r = json.loads((tmp_path / "b.json").read_text())
    assert r["slice"]["source"] == "synthetic"
    assert any("2-D slice goes through three seeded Gaussian points" in n for n in r["notes"])


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--slice-png", "x.jpg"], "--slice-png must end in .png or .svg"),
        (["--no-slice", "--slice-png", "x.png"], "--no-slice"),
        (["--slice-box", 0, 1, 0, 1], "--slice-box applies to models with a 2-D input"),
        (["--slice-points", "collinear.npy"], "collinear"),
        # off a line by float32 rounding only: a plane through that noise had a box 1e8 times too large
        (["--slice-points", "collinear32.npy"], "collinear"),
        # uint8 points on a line: judged on their values, not on uint8 differences that wrap round
        (["--slice-points", "collinear8.npy"], "--slice-points are collinear"),
        (["--slice-points", "four.npy"], "exactly 3 points"),
        (["--no-slice", "--fail-if", "slice.regions > 3"], "--no-slice turns the 2-D slice off"),
        (["--fail-if", "slice.boundary_length_per_layer.nope > 3"], "unknown metric path"),
    ],
)
def test_bad_slice_options_are_usage_errors(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    rows = np.load(DIGITS)[:4].reshape(4, 64).astype(np.float64)
    np.save(tmp_path / "collinear.npy", np.stack([rows[0], rows[1], 2 * rows[1] - rows[0]]))
    np.save(tmp_path / "four.npy", rows)
    a = (rows[0] + 0.1).astype(np.float32)
    np.save(tmp_path / "collinear32.npy", np.stack([a, 2 * a, 3 * a]))
    x, d = (rows[0] * 10).round().astype(np.uint8), (rows[1] * 10).round().astype(np.uint8)
    np.save(tmp_path / "collinear8.npy", np.stack([x + d, x, x + 2 * d]))
    code, _, err = run([MLP, "--data", DIGITS, *FAST, "--json", tmp_path / "x.json", *extra], capsys)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("box", [[0, 1e-300, 0, 1e-300], [0, 1e-160, 0, 1e-160]])
def test_a_box_too_small_for_float64_is_refused(tmp_path, capsys, box):
    """A valid but tiny --slice-box: its area (or regions per area) was 0 or inf, an internal
    ZeroDivisionError or a JSON of inf (exit 3)."""
    code, _, err = run([SPIRALS, "--data", SPIRAL_DATA, *FAST, "--json", tmp_path / "x.json", "--slice-box", *box], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "is too small: its area underflows float64" in err and not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("model,gate,keys", [
    (SPIRALS, "slice.box.half_width > 0", "slice.box.xmin, slice.box.xmax, slice.box.ymin, slice.box.ymax"),
    (MLP, "slice.box.xmin > 0", "slice.box.half_width"),
])
def test_a_box_key_the_model_s_slice_lacks_is_refused_before_the_audit(tmp_path, capsys, monkeypatch, model, gate, keys):
    """A 2-D input is sliced in its own plane, whose box is its range; any other input's box is a
    square of a half-width. `regionaudit metrics` lists the latter: on a 2-D model the gate was
    refused after the whole run."""
    import regionaudit.api as api

    monkeypatch.setattr(api, "trace_segments", lambda *a, **k: pytest.fail("the analysis ran"))
    code, _, err = run([model, *FAST, "--json", tmp_path / "x.json", "--fail-if", gate], capsys)
    assert code == 2 and f"this model's slice box has {keys}" in err and len(err.strip().splitlines()) == 1


def test_baseline_reuses_the_slice_settings(tmp_path, capsys):
    base = tmp_path / "base.json"
    code, _, err = run([SPIRALS, "--data", SPIRAL_DATA, *FAST, "--json", base, "--max-regions", 30], capsys)
    assert code == 0, err
    again = tmp_path / "again.json"
    code, _, err = run([SPIRALS, "--data", SPIRAL_DATA, "-q", "--json", again, "--baseline", base,
                        "--max-increase", "slice.regions=0"], capsys)
    assert code == 0, err
    a, b = json.loads(base.read_text()), json.loads(again.read_text())
    assert b["settings"]["max_regions"] == 30 and b["slice"]["regions"] == a["slice"]["regions"]
    code, _, err = run([SPIRALS, "--data", SPIRAL_DATA, "-q", "--json", again, "--baseline", base, "--max-regions", 40], capsys)
    assert code == 2 and "--max-regions 40 conflicts with the baseline's max_regions 30" in err
    code, _, err = run([SPIRALS, "--data", SPIRAL_DATA, "-q", "--json", again, "--baseline", base, "--no-slice"], capsys)
    assert code == 2 and "--no-slice conflicts with the baseline's slice (on)" in err



@pytest.mark.parametrize("option, value", [("--fail-if", "slice.regions > 5"), ("--slice-png", "slice.png")])
def test_a_slice_asked_of_a_baseline_without_one_names_the_baseline(tmp_path, capsys, option, value):
    """A baseline measured with --no-slice turns the slice off for the run that reuses it: the
    refusal says so, and names no --no-slice the user never typed."""
    base = tmp_path / "base.json"
    code, _, err = run([SPIRALS, "--data", SPIRAL_DATA, *FAST, "--no-slice", "--json", base], capsys)
    assert code == 0, err
    again = tmp_path / "again.json"
    wanted = tmp_path / value if option == "--slice-png" else value
    code, _, err = run([SPIRALS, "-q", "--json", again, "--baseline", base, option, wanted], capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "the baseline was measured with --no-slice" in err and "make a new baseline" in err
    assert "--no-slice turns" not in err
    assert not again.exists() and not (tmp_path / "slice.png").exists()


def test_a_gate_on_the_slices_time_without_a_slice_is_refused_before_the_analysis(tmp_path, capsys, monkeypatch):
    """timing.slice_s exists only where a slice was measured: with --no-slice a gate on it is a
    usage error before the analysis, naming the path, not an unknown path after it."""

    def no_analysis(*args, **kwargs):
        raise AssertionError("the analysis ran")

    monkeypatch.setattr("regionaudit.commands.audit", no_analysis)
    out = tmp_path / "r.json"
    code, _, err = run([SPIRALS, "--data", SPIRAL_DATA, *FAST, "--no-slice", "--json", out,
                        "--fail-if", "timing.slice_s > 60"], capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "timing.slice_s" in err and "--no-slice turns the 2-D slice off" in err
    assert not out.exists()


@pytest.mark.parametrize("path", ["capacity.measured.slice_regions", "capacity.measured.slice_regions_per_area_per_neuron2"])
def test_a_gate_on_the_slices_capacity_numbers_without_a_slice_is_refused_before_the_analysis(tmp_path, capsys,
                                                                                                 monkeypatch, path):
    """The measured capacity's slice numbers come from the 2-D slice alone: with --no-slice a gate
    on one is refused before the analysis, not failed as undefined after it."""

    def no_analysis(*args, **kwargs):
        raise AssertionError("the analysis ran")

    monkeypatch.setattr("regionaudit.commands.audit", no_analysis)
    out = tmp_path / "r.json"
    code, _, err = run([SPIRALS, "--data", SPIRAL_DATA, *FAST, "--no-slice", "--json", out,
                        "--fail-if", f"{path} > 1"], capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert path in err and "--no-slice turns the 2-D slice off" in err
    assert not out.exists()


def test_compare_refuses_the_slices_capacity_numbers_before_measuring():
    """A comparison's audits measure no slice: their capacity's slice numbers are always null."""
    from regionaudit.errors import GateError
    from regionaudit.gates.thresholds import check_gates

    with pytest.raises(GateError, match=r"^unknown metric path 'a.capacity.measured.slice_regions': compare measures no 2-D slice"):
        check_gates(["a.capacity.measured.slice_regions > 1"], compare=True)
    check_gates(["a.capacity.measured.max_segment_regions > 1"], compare=True)  # (not a slice number)

def test_compare_has_no_slice_paths():
    from regionaudit.gates.catalogue import could_exist

    assert could_exist("slice.regions") and could_exist("slice.area.median") and could_exist("slice.classes.3")
    assert not could_exist("a.slice.regions", compare=True) and not could_exist("b.slice.classes.1", compare=True)


def test_a_model_without_kinks_is_one_region_everywhere(tmp_path, capsys):
    """An affine model (one Gemm): every segment and the slice are one region, no point has a
    boundary to be near, and the summary counts in the singular where a count is 1."""
    rng = np.random.default_rng(0)
    inits = {"w": rng.standard_normal((2, 3)).astype(np.float32), "b": rng.standard_normal(3).astype(np.float32)}
    model = tmp_path / "affine.onnx"
    onnx.save(make_model([helper.make_node("Gemm", ["x", "w", "b"], ["y"])], [1, 2], inits), str(model))
    out, html = tmp_path / "r.json", tmp_path / "r.html"
    code, stdout, err = run([model, "--pairs", 1, "--max-points", 1, "--json", out, "-o", html], capsys)
    assert code == 0, err
    assert "over 1 segment\n" in stdout and "over 1 point\n" in stdout and "2-D slice: 1 region," in stdout
    result = json.loads(out.read_text())
    assert [s["regions"] for s in result["density"]["segments"]] == [1]
    assert result["slice"]["regions"] == 1
    assert [p["distance"] for p in result["distance"]["points"]] == [None]
    # the point was measured: what is missing is a boundary, and the note and the report say so
    assert "No boundary distance is defined: the model has no ReLU-type units." in result["notes"]
    page = html.read_text()
    assert "The model has no ReLU-type units. Boundary distance is undefined." in page
    assert "No points were measured" not in page


def _one_input_model(path: Path) -> Path:
    """x (1, 1) -> 6 ReLU units -> 1 output: a model whose input space is a line."""
    rng = np.random.default_rng(0)
    inits = {"w1": rng.standard_normal((1, 6)).astype(np.float32), "b1": rng.standard_normal(6).astype(np.float32),
             "w2": rng.standard_normal((6, 1)).astype(np.float32), "b2": np.zeros(1, np.float32)}
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["y"])]
    onnx.save(make_model(nodes, [1, 1], inits), str(path))
    return path


def test_a_one_input_model_is_audited_without_a_slice(tmp_path, capsys):
    """No plane runs through a 1-D input space: the default audit skips the slice and says so,
    and a slice gate or picture is a usage error before the analysis."""
    model, out = _one_input_model(tmp_path / "line.onnx"), tmp_path / "r.json"
    code, _, err = run([model, *FAST, "--json", out], capsys)
    assert code == 0, err
    result = json.loads(out.read_text())
    assert result["slice"] is None and result["density"]["segments"]
    assert any("2-D slice is skipped" in n and "one element" in n for n in result["notes"])
    for extra in (["--fail-if", "slice.regions > 3"], ["--slice-png", tmp_path / "s.png"]):
        out.unlink(missing_ok=True)
        code, _, err = run([model, *FAST, "--json", out, *extra], capsys)
        assert code == 2 and "one element: it has no 2-D slice" in err and err.count("\n") == 1
        assert not out.exists() and not (tmp_path / "s.png").exists()


def test_a_layer_the_stopped_slice_never_split_has_no_boundary_length(tmp_path, capsys):
    """The sample MLP's first layer alone makes more than 20 regions: stopped there, the deeper
    layers' boundary lengths are unknown (null, with a note a gate names), not 0; a finished
    slice has a length for every layer."""
    out = tmp_path / "r.json"
    code, _, err = run([MLP, "--data", DIGITS, *FAST, "--json", out, "--max-regions", 20], capsys)
    assert code == 0, err
    r = json.loads(out.read_text())
    lengths = r["slice"]["boundary_length_per_layer"]
    first, *deeper = lengths.values()
    assert r["slice"]["truncated"] and first > 0 and deeper and all(v is None for v in deeper)
    assert r["slice"]["boundary_length"] == pytest.approx(first)
    assert any("stopped before" in n and "null rather than 0" in n for n in r["notes"])
    code, _, err = run([MLP, "--data", DIGITS, *FAST, "--json", out, "--max-regions", 20, "--fail-if",
                        f"slice.boundary_length_per_layer.{list(lengths)[-1]} < 1"], capsys)
    assert code == 1 and "undefined (null): The 2-D slice stopped before" in err
    code, _, err = run([SPIRALS, "--data", SPIRAL_DATA, *FAST, "--json", out], capsys)
    sl = json.loads(out.read_text())["slice"]
    assert code == 0 and not sl["truncated"] and all(v > 0 for v in sl["boundary_length_per_layer"].values())


@pytest.mark.parametrize("rows", ["two", "constant", "collinear"])
def test_data_that_spans_no_plane_skips_the_default_slice_and_says_why(tmp_path, capsys, rows):
    """Fewer than three rows, or rows that all lie on a line: the default slice is skipped with
    a note (it went through seeded Gaussian points, or ended the audit with exit 2); a slice
    picture or gate is then a usage error, refused in one line before the analysis (no note or
    warning before it), and --slice-points still slice."""
    digits = np.load(DIGITS)[:6].reshape(6, -1)
    data = {"two": digits[:2], "constant": np.full((6, 64), 0.5), "collinear": digits[0] + np.arange(6)[:, None] * (digits[1] - digits[0])}[rows]
    np.save(tmp_path / "d.npy", data.reshape(-1, 1, 8, 8))
    base = [SAMPLES / "digits_cnn.onnx", "--data", tmp_path / "d.npy", *FAST, "--init-reference", 0]
    code, _, err = run([*base, "--json", tmp_path / "r.json"], capsys)
    assert code == 0, err
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["slice"] is None and result["density"]["segments"]
    why = "the data has 2 rows" if rows == "two" else "no three data rows span a plane"
    assert any(n.startswith(f"The 2-D slice is skipped: {why}") and "--slice-points" in n for n in result["notes"])
    for extra in (["--slice-png", tmp_path / "s.png"], ["--fail-if", "slice.regions > 3"]):
        code, _, err = run([*base, "--json", tmp_path / "x.json", *extra], capsys)
        [line] = err.splitlines()
        assert code == 2 and line.startswith("regionaudit: error:") and why in line and "--slice-points" in line
        assert not (tmp_path / "x.json").exists() and not (tmp_path / "s.png").exists()
    np.save(tmp_path / "p.npy", np.load(DIGITS)[:3])
    code, _, err = run([*base, "--slice-points", tmp_path / "p.npy", "--max-regions", 500, "--json", tmp_path / "p.json"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "p.json").read_text())["slice"]["source"] == "file"


@pytest.mark.parametrize("rows", ["two", "constant"])
def test_a_two_d_model_is_sliced_in_its_plane_however_few_its_rows(tmp_path, capsys, rows):
    """A 2-D input's slice is its own plane over the data's range: the rows only mark it, so two
    rows, or rows that are all one point, still give a slice."""
    spirals = np.load(SPIRAL_DATA)
    data = spirals[[0, -1]] if rows == "two" else np.repeat(spirals[:1], 5, 0)
    np.save(tmp_path / "d.npy", data)
    code, _, err = run([SPIRALS, "--data", tmp_path / "d.npy", *FAST, "--json", tmp_path / "r.json"], capsys)
    assert code == 0, err
    sl = json.loads((tmp_path / "r.json").read_text())["slice"]
    assert sl["regions"] > 1 and len(sl["points"]) == min(3, len(data))
    lo, hi = data.min(0), data.max(0)
    assert sl["box"]["xmin"] < lo[0] <= hi[0] < sl["box"]["xmax"] and sl["box"]["ymin"] < lo[1] <= hi[1] < sl["box"]["ymax"]


def test_a_slice_filled_by_class_has_a_key_and_says_so(tmp_path, capsys):
    svg, html, out = tmp_path / "s.svg", tmp_path / "r.html", tmp_path / "r.json"
    code, _, err = run([SPIRALS, "--data", SPIRAL_DATA, *FAST, "--slice-color", "class", "--slice-png", svg, "-o", html,
                        "--json", out], capsys)
    assert code == 0, err
    classes = json.loads(out.read_text())["slice"]["classes"]
    picture = svg.read_text()
    assert "fill: predicted class" in picture
    assert all(f">class {k}</text>" in picture for k in classes)  # the key names every class present
    assert "its fill is its predicted class" in html.read_text()
