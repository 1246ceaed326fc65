"""What the CLI tells a person: synthetic probes, help, hints and notes."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from clirun import run

SAMPLES = ROOT / "sample_models"
CNN = SAMPLES / "digits_cnn.onnx"
MLP = SAMPLES / "digits_mlp.onnx"
DIGITS = SAMPLES / "digits_test.npy"


def test_synthetic_probes_are_said_first_and_once(tmp_path, capsys):
    model = tmp_path / "R&D <b>net &amp; co.onnx"  # a name a Markdown card must keep inert
    shutil.copy(MLP, model)
    report, card = tmp_path / "r.html", tmp_path / "card.md"
    code, out, err = run([model, "--no-slice", "--pairs", 4, "--max-points", 3, "-o", report, "--card", card, "-q"], capsys)
    assert code == 0, err
    assert out.splitlines()[0].startswith("SYNTHETIC PROBES: no data was given")
    html = report.read_text()
    assert html.count("Synthetic probes.") == 1
    assert html.count("not the model&#39;s data") + html.count("not the model's data") == 0  # not again as a note
    md = card.read_text()
    assert md.count("Synthetic probes") == 1 and md.count("no data was given") == 1
    assert "near the data" not in md and "data point" not in md
    assert "R&D \\<b\\>net \\&amp; co.onnx" in md  # backslash escapes, literal &
    assert not re.search(r"&(#\d+|[a-z]+);", md.replace("\\&amp;", ""))


def test_real_data_gets_no_synthetic_banner(tmp_path, capsys):
    data = tmp_path / "rows.npy"
    np.save(data, np.load(DIGITS)[:8])
    report, card = tmp_path / "r.html", tmp_path / "card.md"
    code, out, err = run([MLP, "--no-slice", "--data", data, "--pairs", 3, "--max-points", 2, "-o", report, "--card", card, "-q"], capsys)
    assert code == 0, err
    assert not out.startswith("SYNTHETIC") and "Synthetic probes" not in report.read_text()
    assert "Synthetic" not in card.read_text() and "near the data" in card.read_text()


class StepClock:
    """A fake clock: every reading is `step` seconds after the previous one."""

    def __init__(self, step: float):
        self.step, self.now = step, 1000.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def digits(tmp_path, rows=10):
    path = tmp_path / "rows.npy"
    np.save(path, np.load(DIGITS)[:rows])
    return path


def test_a_long_run_says_so_before_it_starts_and_every_30_s(tmp_path, capsys, monkeypatch):
    import regionaudit.commands as commands

    monkeypatch.setattr(commands, "CLOCK", StepClock(31.0))  # each timed sample "takes" 31 s
    code, out, err = run([MLP, "--no-slice", "--data", digits(tmp_path), "--pairs", 6, "--max-points", 3, "--init-reference", 0,
                          "--json", tmp_path / "r.json"], capsys)
    assert code == 0, err
    lines = err.splitlines()
    # 6 segments and 3 points at 31 s each: 279 s
    assert lines[0] == ("regionaudit: this audit will take about 5 min (6 segments, 3 points); faster with "
                        "fewer --pairs, fewer --max-points, --dtype float32, --device cuda")
    progress = lines[1:]
    assert progress and all(re.fullmatch(r"regionaudit: (segments \d+/6|points \d+/3) \(\d+%\), [\d a-z]+ elapsed", p)
                            for p in progress), progress
    assert any(p.startswith("regionaudit: segments 6/6 (100%)") for p in progress)
    assert any(p.startswith("regionaudit: points 3/3 (100%)") for p in progress)
    assert "\r" not in err  # plain lines in a log, no bar redraws


def test_the_estimate_names_only_what_applies(tmp_path, capsys, monkeypatch):
    import regionaudit.commands as commands

    monkeypatch.setattr(commands, "CLOCK", StepClock(31.0))
    pts = tmp_path / "p.npy"
    np.save(pts, np.load(DIGITS)[:2])
    code, _, err = run([MLP, "--no-slice", "--points", pts, "--dtype", "float32", "--init-reference", 0, "--json", tmp_path / "r.json"], capsys)
    assert code == 0, err
    assert err.splitlines()[0] == "regionaudit: this audit will take about 62 s (0 segments, 2 points); faster with --device cuda"


def test_the_estimate_counts_the_init_reference(tmp_path, capsys, monkeypatch):
    import regionaudit.commands as commands

    monkeypatch.setattr(commands, "CLOCK", StepClock(31.0))
    pts = tmp_path / "p.npy"
    np.save(pts, np.load(DIGITS)[:2])
    code, _, err = run([MLP, "--no-slice", "--points", pts, "--dtype", "float32", "--init-reference", 3, "--json", tmp_path / "r.json"],
                       capsys)
    assert code == 0, err
    # 2 points at 31 s, and 3 copies measuring the same 2 points: 8 x 31 s
    assert err.splitlines()[0] == ("regionaudit: this audit will take about 4 min (0 segments, 2 points); "
                                   "faster with --device cuda, --init-reference 0")


def test_the_estimate_counts_the_slice(tmp_path, capsys, monkeypatch):
    import regionaudit.commands as commands

    monkeypatch.setattr(commands, "CLOCK", StepClock(31.0))
    pts = tmp_path / "p.npy"
    np.save(pts, np.load(DIGITS)[:2])
    code, _, err = run([MLP, "--points", pts, "--dtype", "float32", "--init-reference", 0, "--json", tmp_path / "r.json"], capsys)
    assert code == 0, err
    # 2 points at 31 s, and the slice's sample at 31 s: this MLP's plane holds fewer regions than
    # the sample stops at, so the sample is the slice
    assert err.splitlines()[0] == ("regionaudit: this audit will take about 93 s (0 segments, 2 points); "
                                   "faster with --device cuda, --no-slice or a lower --max-regions")


def test_a_short_run_and_a_quiet_run_print_nothing(tmp_path, capsys, monkeypatch):
    import regionaudit.commands as commands

    monkeypatch.setattr(commands, "CLOCK", StepClock(0.5))  # 9 samples of 0.5 s: 4.5 s
    code, _, err = run([MLP, "--no-slice", "--data", digits(tmp_path), "--pairs", 6, "--max-points", 3, "--json", tmp_path / "a.json"], capsys)
    assert code == 0 and err == ""
    monkeypatch.setattr(commands, "CLOCK", StepClock(31.0))
    code, _, err = run([MLP, "--no-slice", "--data", digits(tmp_path), "--pairs", 6, "--max-points", 3, "--json", tmp_path / "b.json",
                        "-q"], capsys)
    assert code == 0 and err == ""


def test_a_terminal_hears_first_before_the_heavy_imports(tmp_path, capsys, monkeypatch):
    import regionaudit.commands as commands

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    seen = {}
    real_run_audit = commands.run_audit

    def spy(*args):
        seen["before"] = terminal.getvalue()
        return real_run_audit(*args)

    monkeypatch.setattr(commands, "run_audit", spy)
    code, out, _ = run([MLP, "--no-slice", "--data", digits(tmp_path), "--pairs", 2, "--max-points", 2, "--json", tmp_path / "r.json"], capsys)
    assert code == 0
    assert seen["before"] == "regionaudit: starting: loading torch and onnxruntime...\n"
    assert f"regionaudit: importing {MLP} and checking it against onnxruntime...\n" in terminal.getvalue()


def test_the_cli_module_imports_neither_torch_nor_onnxruntime():
    code = "import sys, regionaudit.cli, regionaudit.progress; print(sorted({'torch', 'onnxruntime'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_onnxruntime_warnings_stay_off_stderr(tmp_path):
    """A model with an attribute onnxruntime calls deprecated (`tf_half_pixel_for_nn` at opset 13)
    makes it log a warning from its own logger; the command line's stderr holds only its own lines."""
    import onnx
    from onnx import helper

    from conftest import make_model

    rng = np.random.default_rng(0)
    inits = {"w": rng.standard_normal((3, 2, 3, 3)).astype(np.float32), "scales": np.array([1, 1, 2, 2], np.float32),
             "g": rng.standard_normal((3 * 12 * 12, 2)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Resize", ["r", "", "scales"], ["u"], mode="nearest",
                              coordinate_transformation_mode="tf_half_pixel_for_nn"),
             helper.make_node("Flatten", ["u"], ["f"]), helper.make_node("Gemm", ["f", "g"], ["y"])]
    model = tmp_path / "upsampled.onnx"
    onnx.save(make_model(nodes, [1, 2, 6, 6], inits, 13), str(model))
    done = subprocess.run([sys.executable, "-m", "regionaudit", "inspect", str(model)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "onnxruntime:Default" not in done.stderr and "deprecated" not in done.stderr, done.stderr
    assert "resample" in done.stdout  # the resize was imported


AUDIT_OPTIONS = ["--data", "--points", "--segments", "--pairs", "--max-points", "--data-layout", "--layout", "--seed",
                 "--dtype", "--device", "-o, --output", "--json", "--card", "--card-append", "--junit", "--fail-if",
                 "--baseline", "--max-increase"]


def test_top_level_help_lists_the_audit_options_in_full(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    assert "regionaudit MODEL.onnx [OPTIONS]" in out
    for opt in AUDIT_OPTIONS:
        assert f"  {opt} " in out, opt
    for title in ("Probe options", "Output options", "Gates", "Commands:"):
        assert title in out
    commands = out[out.index("Commands:"):]
    assert "..." not in commands  # descriptions are not cut short
    for name in ("audit", "compare", "inspect", "metrics"):
        assert f"  {name} " in commands


@pytest.mark.parametrize("argv", [["-h"], [MLP, "-h"], ["audit", "-h"], ["inspect", "-h"], ["compare", "-h"],
                                  ["metrics", "-h"]])
def test_dash_h_works_everywhere(capsys, argv):
    code, out, err = run(argv, capsys)
    assert code == 0 and out.startswith("Usage: regionaudit") and err == ""


@pytest.mark.parametrize("argv", [["--help"], ["compare", "--help"], [MLP, "--help"]])
def test_ranges_read_as_a_person_writes_them(capsys, argv):
    _, out, _ = run(argv, capsys)
    assert str(2**63 - 1) not in out and "1000000" not in out and "<=x<=" not in out
    assert "[0 to 10^6]" in out and "0 to 2^63 - 1" in " ".join(out.split())


@pytest.mark.parametrize("argv,arguments", [(["compare", "--help"], ["MODEL_A", "MODEL_B"]), ([MLP, "--help"], ["MODEL"])])
def test_help_lists_no_argument_as_an_option(capsys, argv, arguments):
    """The models are in the usage line; no options section lists them as options without help."""
    code, out, _ = run(argv, capsys)
    assert code == 0
    usage = out.splitlines()[0]
    for name in arguments:
        assert name in usage
        assert f"\n  {name}\n" not in out
    assert "Other options:\n  -q, --quiet" in out


def test_a_usage_error_points_to_the_help_that_has_the_option(capsys):
    code, _, err = run(["compare", MLP, MLP, "--pairs", "-3"], capsys)
    assert code == 2 and "-3 is not in the range 0 to 10^6" in err and "(see regionaudit compare --help)" in err
    _, help_text, _ = run(["compare", "--help"], capsys)
    assert "--pairs N" in help_text
    code, _, err = run([MLP, "--no-slice", "--pairs", "-3"], capsys)
    assert code == 2 and "(see regionaudit --help)" in err
    code, _, err = run(["inspect", MLP, "--pairs", "3"], capsys)
    assert code == 2 and "(see regionaudit inspect --help)" in err


def test_a_misspelt_gate_path_gets_the_closest_paths(tmp_path, capsys):
    data = digits(tmp_path)
    for option, text in (("--fail-if", "density.summary.mediam > 3"), ("--max-increase", "density.summary.mediam=10%")):
        extra = [] if option == "--fail-if" else ["--baseline", _baseline(tmp_path, data, capsys)]
        code, _, err = run([MLP, "--no-slice", "--data", data, "-q", "--json", tmp_path / "x.json", option, text, *extra], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1
        assert "unknown metric path 'density.summary.mediam'; did you mean density.summary.median" in err
        assert "timing.total_s" not in err and len(err) < 400  # not every path on one line
        assert "`regionaudit metrics` lists all" in err
        assert not (tmp_path / "x.json").exists()


def _baseline(tmp_path, data, capsys):
    path = tmp_path / "base.json"
    if not path.exists():
        code, _, err = run([MLP, "--no-slice", "--data", data, "--pairs", 3, "--max-points", 2, "-q", "--json", path], capsys)
        assert code == 0, err
    return path


def test_one_number_format_and_exact_gate_values(tmp_path, capsys):
    from regionaudit.gates.numbers import format_number
    from regionaudit.report import formatting as F

    data = digits(tmp_path)
    out, report, card = tmp_path / "r.json", tmp_path / "r.html", tmp_path / "card.md"
    code, _, err = run([CNN, "--no-slice", "--data", data, "--pairs", 5, "--max-points", 4, "-q", "--json", out, "-o", report,
                        "--card", card, "--fail-if", "distance.summary.median > 1e9",
                        "--fail-if", "deviation.summary.median < 1e-300"], capsys)
    assert code == 0, err
    r = json.loads(out.read_text())
    html, md = report.read_text(), card.read_text()
    for key in ("distance", "deviation"):
        median = r[key]["summary"]["median"]
        shown = F.num(median)
        assert len(shown.replace(".", "").replace(",", "").lstrip("0")) <= 4  # 4 significant digits
        assert f"{shown} (median" in md and f">{shown}<" in html  # the same in the card and the report
        exact = format_number(median)
        assert exact != shown  # the gate tables show what was compared, not a rounded value
        assert f"| {exact} | pass |" in md and f">{exact}<" in html
        assert f"pass {key}.summary.median" in err and f"value {exact}" in err
    assert re.search(r">report \(its plots and tables\)</t[hd]>\s*<td[^>]*>[\d.]+ m?s</td>", html)  # the report's making is timed too
    assert r["timing"]["report_s"] > 0
