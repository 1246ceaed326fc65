"""The reference frame on the command line: --init-reference, --labels, inspect's bounds, compare's tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clirun import run

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"
CNN = SAMPLES / "digits_cnn.onnx"
MLP = SAMPLES / "digits_mlp.onnx"
DIGITS = SAMPLES / "digits_test.npy"
LABELS = SAMPLES / "digits_test_labels.npy"


@pytest.mark.parametrize("model,formula", [(MLP, "serra2018_upper"), (CNN, "xiong2020_upper")])
def test_inspect_prints_bounds_with_formula_and_writes_capacity(model, formula, tmp_path, capsys):
    out_json = tmp_path / "i.json"
    code, out, err = run(["inspect", model, "--json", out_json], capsys)
    assert code == 0, err
    line = next(l for l in out.splitlines() if l.strip().startswith(formula))
    assert "10^" in line and "C(" in line
    assert "on a line (n_0 = 1)" in out
    d = json.loads(out_json.read_text())
    assert set(d) >= {"model", "capacity"}
    names = [b["name"] for b in d["capacity"]["bounds"]]
    assert names == ["arrangement", "montufar2014_lower", "montufar2017_upper", "serra2018_upper", "xiong2020_exact", "xiong2020_upper"]
    assert all(set(b) == {"name", "kind", "log10", "formula", "covered", "reason"} for b in d["capacity"]["bounds"])


def test_inspect_says_why_a_resnet_is_not_covered(capsys):
    code, out, _ = run(["inspect", SAMPLES / "digits_resnet.onnx"], capsys)
    assert code == 0
    assert "not covered: the network has MaxPool" in out


def test_audit_init_reference_labels_and_gate(tmp_path, capsys):
    out_json = tmp_path / "r.json"
    code, out, err = run([MLP, "--data", DIGITS, "--labels", LABELS, "--pairs", 12, "--max-points", 6,
                          "--init-reference", 1, "--json", out_json, "-q",
                          "--fail-if", "density.ratio_to_init.median > 1000",
                          "--fail-if", "density.summary.ci95_high > 100000"], capsys)
    assert code == 0, err
    d = json.loads(out_json.read_text())
    assert d["settings"]["init_reference"] == 1
    assert d["reference"]["init"]["copies"] == 1 and d["reference"]["init"]["segments"] == 12
    assert d["density"]["by_class"]["source"] == "labels"
    assert d["capacity"]["log10_upper"] > 0
    assert [g["passed"] for g in d["gates"]] == [True, True]
    code, out, err = run([MLP, "--data", DIGITS, "--pairs", 12, "--max-points", 6, "--init-reference", 1,
                          "--json", tmp_path / "g.json", "-q", "--fail-if", "density.ratio_to_init.median > 0"], capsys)
    assert code == 1


def test_init_reference_zero_and_bad_value(tmp_path, capsys):
    out_json = tmp_path / "r.json"
    code, _, err = run([MLP, "--data", DIGITS, "--pairs", 4, "--max-points", 2, "--init-reference", 0, "--json", out_json, "-q"], capsys)
    assert code == 0, err
    d = json.loads(out_json.read_text())
    assert d["reference"] is None and d["density"]["ratio_to_init"] is None
    code, _, err = run([MLP, "--init-reference", -1], capsys)
    assert code == 2 and "init-reference" in err


@pytest.mark.parametrize("max_knots,all_cut", [(5, True), (20, False)])
def test_segments_cut_short_in_the_init_reference_are_said_so(tmp_path, capsys, max_knots, all_cut):
    """--max-knots cuts segments short in the model or its copies: a note counts them, the ratio
    leaves them out, and where it has none left its gate says that (before: "no initialisation
    reference was measured (--init-reference 0)", with one measured)."""
    out_json = tmp_path / "r.json"
    code, _, err = run([MLP, "--data", DIGITS, "--pairs", 10, "--max-points", 2, "--init-reference", 1, "--max-knots", max_knots,
                        "--no-slice", "--json", out_json, "-q", "--fail-if", "density.ratio_to_init.median > 1000"], capsys)
    d = json.loads(out_json.read_text())
    ref = d["reference"]["init"]
    cut = sum(d["density"]["segments"][i]["truncated"] or any(s["segments"]["truncated"][i] for s in ref["per_seed"])
              for i in range(ref["segments"]))
    assert (cut == 10) == all_cut and cut > 0
    note = [n for n in d["notes"] if n.startswith("--max-knots cut short")]
    assert note == [f"--max-knots cut short {cut} of the 10 segments the initialisation reference measured, in the model or a copy: "
                    "their counts are lower bounds, " + ("so density.ratio_to_init is undefined (null)." if all_cut else
                                                         "density.ratio_to_init leaves them out.")]
    if all_cut:
        assert code == 1 and d["density"]["ratio_to_init"] is None
        assert "undefined (null): --max-knots cut short every segment the initialisation reference measured" in err
        assert "--init-reference 0" not in err
    else:
        assert code == 0, err
        assert d["density"]["ratio_to_init"]["count"] == 10 - cut


def test_labels_without_data_is_a_usage_error(tmp_path, capsys):
    code, _, err = run([MLP, "--labels", LABELS, "--json", tmp_path / "x.json", "-q"], capsys)
    assert code == 2 and "--labels needs --data" in err
    assert not (tmp_path / "x.json").exists()


def test_compare_writes_paired_tests_and_overlays(tmp_path, capsys):
    out_json, html = tmp_path / "c.json", tmp_path / "c.html"
    code, _, err = run(["compare", MLP, MLP, "--data", DIGITS, "--pairs", 10, "--max-points", 8,
                        "--init-reference", 0, "--json", out_json, "-o", html, "-q"], capsys)
    assert code == 0, err
    d = json.loads(out_json.read_text())
    for key in ("density", "deviation", "distance"):
        tests = d["paired"][key]["tests"]
        assert any("wilcoxon" in k for k in tests) and any("sign_test" in k for k in tests)
        # the same model twice: every difference is zero, so no test is defined
        assert tests["wilcoxon_p_value"] is None and tests["sign_test_nonzero"] == 0
    page = html.read_text()
    for pid in ("cmp-density-ecdf", "cmp-deviation-ecdf", "cmp-distance-ecdf", "cmp-density-scatter", "cmp-distance-scatter"):
        assert f'id="plot-{pid}"' in page
    assert "Per layer" in page and "Wilcoxon p" in page


def test_compare_two_models_gives_p_values(tmp_path, capsys):
    from scipy.stats import binomtest, wilcoxon

    out_json = tmp_path / "c.json"
    code, _, err = run(["compare", CNN, SAMPLES / "digits_resnet.onnx", "--data", DIGITS, "--pairs", 8, "--max-points", 6,
                        "--init-reference", 0, "--json", out_json, "-q"], capsys)
    assert code == 0, err
    p = json.loads(out_json.read_text())["paired"]["density"]
    diffs = [x for x in p["differences"] if x is not None]
    assert p["tests"]["wilcoxon_p_value"] == pytest.approx(wilcoxon(diffs, zero_method="wilcox").pvalue)
    nz = [x for x in diffs if x != 0]
    assert p["tests"]["sign_test_p_value"] == pytest.approx(binomtest(sum(x > 0 for x in nz), len(nz)).pvalue)


def test_gates_take_the_reference_frames_documented_paths(tmp_path, capsys):
    """The README's gate paths of the reference frame (class split, Spearman, bounds, the
    re-initialised copies) are accepted before the audit and evaluated on its result; a typo
    among them is still a usage error."""
    gates = ["density.by_class.same_class.summary.median > 1e9", "deviation.spearman.rho > 2",
             "capacity.log10_upper < 0", "reference.init.pooled.density.summary.median > 1e9"]
    args = [MLP, "--data", DIGITS, "--labels", LABELS, "--pairs", 12, "--max-points", 2, "--init-reference", 1,
            "--no-slice", "-q", "--json", tmp_path / "r.json"]
    code, _, err = run([*args, *[a for g in gates for a in ("--fail-if", g)]], capsys)
    assert code == 0, err
    lines = err.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [f"pass {g}" for g in gates]
    doc = json.loads((tmp_path / "r.json").read_text())
    assert float(lines[2].split("value ")[1]) == pytest.approx(doc["capacity"]["log10_upper"], rel=1e-3)
    code, _, err = run([*args, "--fail-if", "capacity.log10_uper < 0"], capsys)
    assert code == 2 and "capacity.log10_uper" in err
