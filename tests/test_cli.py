"""The command line end to end: outputs, exit codes, one-line errors, determinism."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clirun import run

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"
CNN = SAMPLES / "digits_cnn.onnx"
RESNET = SAMPLES / "digits_resnet.onnx"
MLP = SAMPLES / "digits_mlp.onnx"
DIGITS = SAMPLES / "digits_test.npy"


def small_data(tmp_path: Path, rows: int = 12) -> Path:
    path = tmp_path / "rows.npy"
    np.save(path, np.load(DIGITS)[:rows])
    return path


def test_version(capsys):
    from regionaudit import __version__

    code, out, _ = run(["--version"], capsys)
    assert code == 0 and __version__ in out


def test_inspect_quiet_drops_the_status_lines_as_audit_and_compare_do(capsys, monkeypatch):
    """Status lines go to a terminal only; -q leaves them out there too, and changes nothing else."""
    monkeypatch.setattr("regionaudit.progress._is_tty", lambda stream: True)
    code, out, err = run(["inspect", CNN], capsys)
    assert code == 0 and "importing" in err and "starting" in err
    code, quiet_out, err = run(["inspect", CNN, "-q"], capsys)
    assert code == 0 and err == "" and quiet_out == out


def test_inspect_prints_table_and_writes_json(tmp_path, capsys):
    out_json = tmp_path / "inspect.json"
    code, out, err = run(["inspect", CNN, "--json", out_json], capsys)
    assert code == 0, err
    assert "neurons (ReLU-type units): 768" in out
    conv_rows = [line for line in out.splitlines() if line.split()[1:2] == ["conv"]]
    assert len(conv_rows) == 2 and all(line.endswith("filters 3x3, pads 1,1,1,1") for line in conv_rows)
    model = json.loads(out_json.read_text())["model"]
    assert model["input_shape"] == [1, 8, 8] and model["output_shape"] == [10]  # (no batch axis in either)
    assert model["neurons"] == 768
    assert model["validation"]["max_rel_err"] < 1e-6
    assert [n["kind"] for n in model["nodes"]].count("relu") == 2


def test_audit_json_fields(tmp_path, capsys):
    out_json = tmp_path / "r.json"
    data = small_data(tmp_path)
    code, out, err = run([CNN, "--no-slice", "--data", data, "--pairs", 6, "--max-points", 4, "--json", out_json, "-q"], capsys)
    assert code == 0, err
    r = json.loads(out_json.read_text())
    assert len(r["density"]["segments"]) == 6
    assert all(s["regions"] >= 1 for s in r["density"]["segments"])
    assert all(sum(s["knots_per_layer"].values()) == s["regions"] - 1 for s in r["density"]["segments"])
    assert r["density"]["summary"]["count"] == 6
    assert all(len(s["per_output"]) == 10 for s in r["deviation"]["segments"])
    assert len(r["distance"]["points"]) == 4
    assert all(p["distance"] > 0 for p in r["distance"]["points"])
    assert r["settings"]["synthetic"] is False
    # --json alone writes only the JSON
    assert not (Path.cwd() / "digits_cnn.regionaudit.html").exists()


def test_same_seed_same_json(tmp_path, capsys):
    data = small_data(tmp_path)
    docs = []
    for name in ("a.json", "b.json"):
        code, _, err = run([RESNET, "--no-slice", "--data", data, "--pairs", 4, "--max-points", 3, "--json", tmp_path / name, "-q"], capsys)
        assert code == 0, err
        d = json.loads((tmp_path / name).read_text())
        d.pop("timing")
        docs.append(d)
    assert docs[0] == docs[1]


def test_default_report_in_cwd(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = small_data(tmp_path)
    code, out, err = run([MLP, "--no-slice", "--data", data, "--pairs", 3, "--max-points", 3, "-q"], capsys)
    assert code == 0, err
    report = tmp_path / "digits_mlp.regionaudit.html"
    assert report.is_file() and "<svg" in report.read_text()
    assert "digits_mlp.regionaudit.html" in out


def test_gate_exit_codes(tmp_path, capsys):
    data = small_data(tmp_path)
    common = [MLP, "--data", data, "--pairs", 3, "--max-points", 2, "-q", "--json", tmp_path / "g.json"]
    code, _, err = run([*common, "--no-slice", "--fail-if", "model.neurons != 64"], capsys)
    assert code == 0, err
    code, _, err = run([*common, "--no-slice", "--fail-if", "model.neurons >= 64"], capsys)
    assert code == 1
    assert "model.neurons" in err
    gates = json.loads((tmp_path / "g.json").read_text())["gates"]
    assert gates[0]["passed"] is False and gates[0]["value"] == 64


def test_unknown_gate_path_is_usage_error_and_writes_nothing(tmp_path, capsys):
    data = small_data(tmp_path)
    out_json = tmp_path / "never.json"
    code, _, err = run([MLP, "--no-slice", "--data", data, "--pairs", 2, "-q", "--json", out_json, "--fail-if", "density.nope > 1"], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "density.nope" in err
    assert not out_json.exists()


def test_nan_data_is_refused(tmp_path, capsys):
    bad = np.load(DIGITS)[:5].copy()
    bad[2, 0, 3, 3] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    code, _, err = run([CNN, "--no-slice", "--data", tmp_path / "nan.npy", "--json", tmp_path / "x.json"], capsys)
    assert code == 2 and "NaN" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.json").exists()


def test_pickled_data_is_refused(tmp_path, capsys):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    code, _, err = run([CNN, "--no-slice", "--data", tmp_path / "obj.npy", "--json", tmp_path / "x.json"], capsys)
    assert code == 2 and "pickle" in err


def test_wrong_data_shape(tmp_path, capsys):
    np.save(tmp_path / "w.npy", np.zeros((4, 7), dtype=np.float32))
    code, _, err = run([CNN, "--no-slice", "--data", tmp_path / "w.npy", "--json", tmp_path / "x.json"], capsys)
    assert code == 2 and "(7,)" in err and "(1, 8, 8)" in err


@pytest.mark.parametrize(
    "content",
    [b"", os.urandom(256), None],
    ids=["empty", "random-bytes", "truncated"],
)
def test_broken_model_files_exit_2_one_line(tmp_path, capsys, content):
    path = tmp_path / "broken.onnx"
    path.write_bytes(CNN.read_bytes()[:500] if content is None else content)
    code, _, err = run(["inspect", path], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_internal_error_is_exit_3_without_traceback(tmp_path, capsys, monkeypatch):
    import regionaudit.commands as commands

    def boom(*a, **k):
        raise RuntimeError("something broke")

    monkeypatch.setattr(commands, "audit", boom)
    code, _, err = run([MLP, "--no-slice", "--json", tmp_path / "x.json"], capsys)
    assert code == 3
    assert "internal error" in err and "Traceback" not in err
    code, _, err = run([MLP, "--no-slice", "--json", tmp_path / "x.json", "--debug"], capsys)
    assert code == 3 and "Traceback" in err


def test_compare_two_models(tmp_path, capsys):
    data = small_data(tmp_path)
    out_json = tmp_path / "cmp.json"
    code, out, err = run(
        ["compare", CNN, RESNET, "--data", data, "--pairs", 5, "--max-points", 2, "-q", "--json", out_json,
         "--fail-if", "paired.density.fraction_positive > 1"],
        capsys,
    )
    assert code == 0, err
    r = json.loads(out_json.read_text())
    a_regions = [s["regions"] for s in r["a"]["density"]["segments"]]
    b_regions = [s["regions"] for s in r["b"]["density"]["segments"]]
    assert r["paired"]["density"]["differences"] == [b - a for a, b in zip(a_regions, b_regions)]
    frac = sum(b > a for a, b in zip(a_regions, b_regions)) / 5
    assert r["paired"]["density"]["fraction_positive"] == pytest.approx(frac)


def test_compare_report_puts_each_loop_of_both_models_side_by_side(tmp_path, capsys):
    """The same loops run through A and B; the report shows each loop's two counts (before, the
    loops were measured and gateable but the compare report showed none of them)."""
    data = small_data(tmp_path)
    html, out_json = tmp_path / "c.html", tmp_path / "c.json"
    code, _, err = run(["compare", CNN, RESNET, "--data", data, "--pairs", 2, "--max-points", 1, "--init-reference", 0,
                        "--loops", 2, "--loop-steps", 8, "-q", "-o", html, "--json", out_json], capsys)
    assert code == 0, err
    r = json.loads(out_json.read_text())
    page = html.read_text(encoding="utf-8")
    section = page.split('<section id="loops">')[1].split("</section>")[0]
    cells = [[c.strip() for c in row.split("<td")[1:]] for row in section.split("<tr")[2:]]
    assert len(cells) == 2
    for i, row in enumerate(cells):
        a, b = r["a"]["density"]["paths"][i]["regions"], r["b"]["density"]["paths"][i]["regions"]
        numbers = [c.split(">", 1)[1].split("<", 1)[0] for c in row]
        assert numbers[:5] == [str(i), "8", f"{a:,}", f"{b:,}", ("+" if b > a else "") + f"{b - a:,}"]


def test_compare_refuses_loops_on_a_flat_model_before_measuring_either(tmp_path, capsys, monkeypatch):
    """--loops shifts images, which a flat model has none of: the one line names that model, and
    comes before A is measured (before, A's whole audit ran, then the line said "this model")."""
    from regionaudit import commands

    measured = []
    real = commands.audit
    monkeypatch.setattr(commands, "audit", lambda imported, **kw: measured.append(imported) or real(imported, **kw))
    code, out, err = run(["compare", CNN, MLP, "--data", small_data(tmp_path), "--pairs", 2, "--max-points", 1,
                          "--loops", 1, "-q", "--json", tmp_path / "c.json"], capsys)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [f"regionaudit: error: --loops needs image inputs (channels, height, width); "
                                        f"{MLP} takes inputs of shape (64,)"]
    assert measured == [] and not (tmp_path / "c.json").exists()


@pytest.mark.parametrize("compare", [False, True])
def test_every_path_metrics_lists_can_be_gated(tmp_path, capsys, compare):
    """`regionaudit metrics RESULT.json` lists what gates can name: each of them, on the same run,
    is a gate that passes or fails (exit 0 or 1), never an unknown path (exit 2), before the
    analysis or after it: the capacity's dimensions and measured values, the init reference's
    copies, the thread count and the report's time included."""
    labels = tmp_path / "labels.npy"
    np.save(labels, np.load(SAMPLES / "digits_test_labels.npy")[:12])
    probes = ["--data", small_data(tmp_path), "--labels", labels, "--pairs", 3, "--max-points", 2, "--loops", 1, "--loop-steps", 4,
              "--init-reference", 1]
    head = ["compare", CNN, RESNET] if compare else [CNN, "--max-regions", 300]
    first = tmp_path / "first.json"
    code, _, err = run(head + probes + ["-q", "-o", tmp_path / "r.html", "--json", first], capsys)
    assert code == 0, err
    code, listed, err = run(["metrics", first], capsys)
    assert code == 0, err
    paths = listed.split()
    assert len(paths) > 400 if compare else len(paths) > 200
    gates = [arg for p in paths for arg in ("--fail-if", f"{p} > -1")]
    code, _, err = run(head + probes + ["-q", "-o", tmp_path / "r.html", "--json", tmp_path / "again.json"] + gates, capsys)
    assert code in (0, 1), err
    assert len(json.loads((tmp_path / "again.json").read_text())["gates"]) == len(paths)


@pytest.mark.parametrize("args,gate,reason", [
    (["--pairs", 0], "reference.init.pooled.density.summary.median", "no segments were measured"),
    (["--pairs", 1, "--init-reference", 0], "reference.init.pooled.density.summary.median",
     "no initialisation reference was measured (--init-reference 0)"),
    (["--pairs", 2, "--init-reference", 0], "deviation.spearman.rho", "Spearman correlation needs at least 3 segments, found 2"),
    (["--pairs", 0, "--init-reference", 0], "density.by_class.same_class.count", "no segments were measured"),
    (["--pairs", 1, "--init-reference", 0], "reference.init.copies", "no initialisation reference was measured (--init-reference 0)"),
])
def test_a_documented_metric_that_is_null_fails_its_gate_as_undefined(tmp_path, capsys, args, gate, reason):
    """A part null as a whole still has its documented paths: a gate on one fails as undefined and
    says why (exit 1), as every other undefined metric does, not as an 'unknown' path (exit 2)."""
    out_json = tmp_path / "r.json"
    code, _, err = run([SAMPLES / "spirals_mlp.onnx", *args, "--no-slice", "-q", "--json", out_json, "--fail-if", f"{gate} > 1"], capsys)
    assert code == 1 and f"metric {gate} is undefined (null): {reason}" in err, err
    code, listed, _ = run(["metrics", out_json], capsys)
    paths = listed.split()
    assert gate in paths and gate.rsplit(".", 1)[0] not in paths  # the keys, not the null part



def test_a_per_layer_gate_where_no_segment_was_measured_fails_as_undefined(tmp_path, capsys):
    """With no segment (--pairs 0) a kink node's knot count is undefined like every density
    metric: its gate fails and says why (exit 1, the JSON written), not 'unknown path' (exit 2)."""
    out_json = tmp_path / "r.json"
    gate = "density.knots_per_layer./net/net.1/Relu"
    code, _, err = run([SAMPLES / "spirals_mlp.onnx", "--pairs", 0, "--max-points", 2, "--init-reference", 0, "--no-slice",
                        "-q", "--json", out_json, "--fail-if", f"{gate} > 3"], capsys)
    assert code == 1 and f"FAIL {gate} > 3: metric {gate} is undefined (null): no segments were measured" in err, err
    [result] = json.loads(out_json.read_text())["gates"]
    assert result["value"] is None and result["passed"] is False

def test_compare_refuses_different_input_shapes(tmp_path, capsys):
    code, _, err = run(["compare", CNN, SAMPLES / "spirals_mlp.onnx", "--json", tmp_path / "c.json"], capsys)
    assert code == 2 and "input" in err


def test_console_script_runs_as_module(tmp_path):
    """`python -m regionaudit` is the same program; errors stay one line without a traceback."""
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    proc = subprocess.run([sys.executable, "-m", "regionaudit", "inspect", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_baseline_reuses_settings_and_gates_increases(tmp_path, capsys):
    data = small_data(tmp_path)
    base = tmp_path / "base.json"
    code, _, err = run([CNN, "--no-slice", "--data", data, "--pairs", 4, "--max-points", 3, "--seed", 7, "-q", "--json", base], capsys)
    assert code == 0, err
    again = tmp_path / "again.json"
    # no probe options given: all of them come from the baseline, so the numbers are the same
    code, _, err = run([CNN, "--no-slice", "--data", data, "-q", "--json", again, "--baseline", base,
                        "--max-increase", "density.summary.median=0%", "--junit", tmp_path / "g.xml"], capsys)
    assert code == 0, err
    a, b = json.loads(base.read_text()), json.loads(again.read_text())
    assert b["settings"]["seed"] == 7 and b["settings"]["pairs"] == 4
    assert [s["regions"] for s in a["density"]["segments"]] == [s["regions"] for s in b["density"]["segments"]]
    assert "pass density.summary.median" in err
    assert "has no effect" not in err  # options the baseline filled in were not typed: nothing to say of them
    assert 'failures="0"' in (tmp_path / "g.xml").read_text()
    # the deeper residual net has more regions than the CNN baseline: an increase bound fails
    code, _, err = run([RESNET, "--no-slice", "--data", data, "-q", "--json", again, "--baseline", base,
                        "--max-increase", "density.summary.median=10%", "--junit", tmp_path / "g.xml"], capsys)
    assert code == 1 and "FAIL density.summary.median" in err
    assert 'failures="1"' in (tmp_path / "g.xml").read_text()
    # an explicit option that contradicts the baseline is a usage error
    code, _, err = run([CNN, "--no-slice", "--data", data, "-q", "--json", again, "--baseline", base, "--seed", 1], capsys)
    assert code == 2 and "--seed 1 conflicts with the baseline's seed 7" in err


def test_a_baseline_of_a_model_with_other_inputs_is_refused_before_the_analysis(tmp_path, capsys, monkeypatch):
    """A baseline measured on synthetic probes of a 2-input model cannot stand for a 64-input
    model: its probes are not this model's, so the run stops with one line and writes nothing."""
    base = tmp_path / "base.json"
    spirals = SAMPLES / "spirals_mlp.onnx"
    code, _, err = run([spirals, "--no-slice", "--pairs", 3, "--max-points", 2, "--init-reference", 0, "-q",
                        "--json", base], capsys)
    assert code == 0, err

    def no_analysis(*args, **kwargs):
        raise AssertionError("the analysis ran")

    monkeypatch.setattr("regionaudit.commands.audit", no_analysis)
    again = tmp_path / "again.json"
    code, out, err = run([MLP, "-q", "--json", again, "--baseline", base,
                          "--max-increase", "density.summary.median=10%"], capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "input" in err and "(2,)" in err and "(64,)" in err and "make a new baseline" in err
    assert not again.exists()


def test_a_baseline_whose_data_does_not_fit_the_model_is_named_in_the_refusal(tmp_path, capsys):
    """The baseline's --data is read (for the import check) before the model's shape is known: a
    baseline of another model fails there, and the line says the data came from the baseline."""
    base = tmp_path / "base.json"
    code, _, err = run([SAMPLES / "spirals_mlp.onnx", "--data", SAMPLES / "spirals_test.npy", "--no-slice", "--pairs", 3,
                        "--max-points", 2, "--init-reference", 0, "-q", "--json", base], capsys)
    assert code == 0, err
    again = tmp_path / "again.json"
    code, _, err = run([MLP, "-q", "--json", again, "--baseline", base], capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "which the baseline measured" in err and "do not fit the model's input shape" in err and "make a new baseline" in err
    assert not again.exists()


def test_explicit_segments_keep_their_order(tmp_path, capsys):
    rows = np.load(DIGITS)[:6]
    inside = np.stack([rows[0], rows[0] * (1 + 1e-9)])  # a tiny segment: one region
    segs = np.stack([np.stack([rows[1], rows[2]]), inside, np.stack([rows[2], rows[1]])])
    np.save(tmp_path / "s.npy", segs)
    out_json = tmp_path / "s.json"
    code, _, err = run([CNN, "--no-slice", "--segments", tmp_path / "s.npy", "-q", "--json", out_json], capsys)
    assert code == 0, err
    r = json.loads(out_json.read_text())
    regions = [s["regions"] for s in r["density"]["segments"]]
    assert regions[1] == 1 and regions[0] == regions[2] > 1  # (a, b) and (b, a) agree, in file order
    assert r["distance"]["points"] == [] and r["settings"]["synthetic"] is False


def test_loops_pdf_and_card_append(tmp_path, capsys):
    data = small_data(tmp_path)
    card = tmp_path / "README.md"
    card.write_bytes(b"# My model\r\n\r\nHand-written text stays.\r\n")
    pdf = tmp_path / "r.pdf"
    for _ in range(2):
        code, out, err = run([CNN, "--no-slice", "--data", data, "--pairs", 3, "--max-points", 2, "--loops", 2, "--loop-steps", 8,
                              "-q", "-o", pdf, "--json", tmp_path / "l.json", "--card-append", card], capsys)
        assert code == 0, err
    r = json.loads((tmp_path / "l.json").read_text())
    assert len(r["density"]["paths"]) == 2 and all(p["edges"] == 8 for p in r["density"]["paths"])
    assert len(r["deviation"]["paths"]) == 2
    assert pdf.read_bytes().startswith(b"%PDF")
    text = card.read_bytes()
    assert text.startswith(b"# My model\r\n\r\nHand-written text stays.\r\n")
    assert text.count(b"<!-- regionaudit:start -->") == 1 and b"(<r.pdf>)" in text


def test_per_layer_gate_paths_are_checked_against_the_model(tmp_path, capsys):
    data = small_data(tmp_path)
    out_json = tmp_path / "k.json"
    code, _, err = run([CNN, "--no-slice", "--data", data, "--pairs", 2, "-q", "--json", out_json,
                        "--fail-if", "density.knots_per_layer.no_such_node > 3"], capsys)
    assert code == 2 and "no_such_node" in err and not out_json.exists()
    kink = "density.knots_per_layer." + err.split("kink nodes are '")[1].split("'")[0] if "kink nodes are '" in err else None
    assert kink, err
    code, _, err = run([CNN, "--no-slice", "--data", data, "--pairs", 2, "-q", "--json", out_json, "--fail-if", f"{kink} < 0"], capsys)
    assert code == 0, err
    knots = json.loads(out_json.read_text())["density"]["knots_per_layer"]
    assert kink.removeprefix("density.knots_per_layer.") in knots


def test_a_run_refused_after_the_import_says_one_line(tmp_path, capsys):
    """The note on an option without effect waits for the checks that follow the import: before,
    it came first, then the error (two lines for a refused run)."""
    code, _, err = run([MLP, "--no-slice", "--pairs", 2, "--loop-steps", 4, "-q", "--json", tmp_path / "r.json",
                        "--fail-if", "density.knots_per_layer.nope > 3"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no kink node of this model" in err, err
    code, _, err = run([MLP, "--no-slice", "--pairs", 2, "--loop-steps", 4, "-q", "--json", tmp_path / "r.json"], capsys)
    assert code == 0 and "--loop-steps 4 has no effect without --loops." in err



def test_a_card_with_a_broken_marker_is_named_in_the_refusal(tmp_path, capsys, monkeypatch):
    """--card-append onto a card whose section marker lacks its pair is refused before the
    analysis, with one line that names that card, and leaves it as it was."""

    def no_analysis(*args, **kwargs):
        raise AssertionError("the analysis ran")

    monkeypatch.setattr("regionaudit.commands.audit", no_analysis)
    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# Model\n\n<!-- regionaudit:start -->\nold section\n", encoding="utf-8")
    code, _, err = run([MLP, "--no-slice", "-q", "--json", tmp_path / "r.json", "--card-append", card], capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"--card-append {card}: " in err and "start marker without its pair" in err
    assert card.read_text(encoding="utf-8") == "# Model\n\n<!-- regionaudit:start -->\nold section\n"
    assert not (tmp_path / "r.json").exists()

def test_card_names_probe_files_without_their_folders(tmp_path, capsys):
    """The card is published: its probes line names --segments and --points files as the data line
    names --data, without the local folders (the JSON's settings keep the paths)."""
    folder = tmp_path / "private" / "probes"
    folder.mkdir(parents=True)
    rows = np.load(DIGITS)[:4].reshape(4, 64)
    np.save(folder / "seg.npy", np.stack([rows[:3], rows[1:4]], axis=1))
    np.save(folder / "pts.npy", rows[:2])
    card, out_json = tmp_path / "card.md", tmp_path / "r.json"
    code, _, err = run([MLP, "--segments", folder / "seg.npy", "--points", folder / "pts.npy", "--no-slice", "--init-reference", 0,
                        "-q", "--card", card, "--json", out_json], capsys)
    assert code == 0, err
    text = card.read_text(encoding="utf-8")
    assert "3 segments from seg.npy; 2 points from pts.npy" in text and "private" not in text
    assert json.loads(out_json.read_text())["settings"]["segments"] == str(folder / "seg.npy")


def test_card_links_are_relative_to_each_card(tmp_path, capsys):
    data = small_data(tmp_path)
    for d in ("rep", "cards/a", "cards/b"):
        (tmp_path / d).mkdir(parents=True)
    code, _, err = run([MLP, "--no-slice", "--data", data, "--pairs", 2, "--max-points", 1, "-q", "-o", tmp_path / "rep/r.html",
                        "--card", tmp_path / "cards/a/card.md", "--card-append", tmp_path / "cards/b/README.md"], capsys)
    assert code == 0, err
    for card in ("cards/a/card.md", "cards/b/README.md"):
        assert "(<../../rep/r.html>)" in (tmp_path / card).read_text()


def test_compare_checks_per_layer_paths_before_the_analyses(tmp_path, capsys, monkeypatch):
    import regionaudit.commands as commands

    monkeypatch.setattr(commands, "audit", lambda *a, **k: pytest.fail("the analysis ran"))
    code, _, err = run(["compare", CNN, CNN, "--pairs", 2, "-q", "--json", tmp_path / "c.json",
                        "--fail-if", "b.density.knots_per_layer.nope > 1"], capsys)
    assert code == 2 and "'b.density.knots_per_layer.nope'" in err and not (tmp_path / "c.json").exists()
    assert "no kink node of this model has that name" in err


def test_overflowing_data_is_refused_before_the_analysis(tmp_path, capsys):
    rows = np.load(DIGITS)[:10].astype(np.float64)
    rows[8:] = 1.7e308  # fits float64, but the differences between rows overflow (beyond the 8 rows the import checks)
    rows[9] *= -1
    np.save(tmp_path / "big.npy", rows)
    code, _, err = run([MLP, "--no-slice", "--data", tmp_path / "big.npy", "-q", "--json", tmp_path / "x.json"], capsys)
    assert code == 2 and "overflow" in err and err.count("\n") == 1
    assert not (tmp_path / "x.json").exists()


def test_the_terminal_marks_a_median_over_cut_segments_as_a_lower_bound(tmp_path, capsys):
    code, out, err = run([SAMPLES / "spirals_mlp.onnx", "--data", SAMPLES / "spirals_test.npy", "--pairs", 4,
                          "--max-points", 2, "--no-slice", "--init-reference", 0, "--max-knots", 2], capsys)
    assert code == 0, err
    [line] = [line for line in out.splitlines() if "regions per segment" in line]
    assert "(lower bound: 4 reached --max-knots) over 4 segments" in line


def test_compare_says_when_the_models_have_different_outputs_and_counts_only_pairs(tmp_path, capsys):
    """A 1-output model against the 10-output MLP: the deviation norms run over different outputs,
    which a note says; with --max-knots cutting segments, only the pairs are counted."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
             for name, shape in (("w1", (64, 8)), ("b1", (8,)), ("w2", (8, 1)))]
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "one.onnx"))
    np.save(tmp_path / "rows.npy", np.load(SAMPLES / "digits_test_flat.npy")[:12])
    code, out, err = run(["compare", MLP, tmp_path / "one.onnx", "--data", tmp_path / "rows.npy", "--pairs", 6,
                          "--max-points", 2, "--max-knots", 3, "--json", tmp_path / "c.json"], capsys)
    assert code == 0, err
    assert "A has 10 outputs and B 1: a segment's absolute deviation is the L2 norm over" in err
    r = json.loads((tmp_path / "c.json").read_text())
    paired = sum(d is not None for d in r["paired"]["density"]["differences"])
    assert paired < 6 and f"{paired} paired segments ({6 - paired} cut short by --max-knots left out)" in out


def test_compare_on_synthetic_probes_says_so_first(tmp_path, capsys):
    code, out, err = run(["compare", MLP, MLP, "--pairs", 2, "--max-points", 1, "--json", tmp_path / "c.json"], capsys)
    assert code == 0, err
    assert out.splitlines()[0].startswith("SYNTHETIC PROBES: no data was given")


def test_json_to_standard_output_with_a_dash(tmp_path, capsys, monkeypatch):
    """`--json -` writes the JSON to standard output, alone (a pipe reads it whole), the summary
    going to stderr; no file named "-" is left behind. inspect does the same."""
    monkeypatch.chdir(tmp_path)
    data = small_data(tmp_path)
    code, out, err = run([CNN, "--data", data, "--pairs", 2, "--max-points", 2, "--no-slice", "--json", "-"], capsys)
    assert code == 0
    result = json.loads(out)
    assert len(result["density"]["segments"]) == 2 and result["model"]["neurons"] == 768
    assert "regions per segment: median" in err and "wrote" not in err
    code, out, err = run(["inspect", CNN, "--json", "-"], capsys)
    assert code == 0 and json.loads(out)["model"]["neurons"] == 768 and "ONNX name" in err
    assert not (tmp_path / "-").exists()


def test_json_to_a_pipe_from_the_shell(tmp_path):
    """As a user pipes it: the whole of standard output is the JSON, for --json - and for
    --json /dev/stdout alike."""
    for target in ("-", "/dev/stdout"):
        proc = subprocess.run([sys.executable, "-m", "regionaudit", str(CNN), "--data", str(small_data(tmp_path)),
                               "--pairs", "2", "--max-points", "2", "--no-slice", "--json", target],
                              capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["density"]["summary"]["count"] == 2
        assert "boundary distance: median" in proc.stderr


@pytest.mark.parametrize("argv, message", [
    (["--json", "-", "--junit", "-"], "--json and --junit both name -: give each output its own file"),
    (["--slice-png", "-"], "--slice-png cannot write to standard output"),
    (["--card-append", "-"], "--card-append cannot write to standard output"),
])
def test_outputs_that_cannot_share_standard_output_are_refused(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = run([CNN, *argv], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and message in err
