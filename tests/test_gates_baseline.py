"""Baselines: loading, reusing settings, and `--max-increase` gates."""

from __future__ import annotations

import json

import pytest

from regionaudit.gates.baseline import (
    PROBE_SETTINGS,
    IncreaseBound,
    baseline_settings,
    evaluate_increases,
    load_baseline,
    merge_settings,
    parse_increase,
)
from regionaudit.errors import BadOption, GateError, RegionAuditError
from regionaudit.result import load_result
from regionaudit.result import (
    AuditResult,
    CompareResult,
    Density,
    Deviation,
    Distance,
    ModelInfo,
    Paired,
    PairedMeasure,
    SegmentDensity,
    SegmentDeviation,
)

SETTINGS = {
    "seed": 0,
    "pairs": 100,
    "max_points": 100,
    "loops": 0,
    "loop_radius": 2.0,
    "loop_steps": 16,
    "dtype": "float64",
    "max_knots": None,
    "input_shape": [3, 8, 8],
    "output_name": None,
    "init_reference": 0,
    "layout": "chw",
    "data_layout": "chw",
    "distance": "auto",
    "distance_directions": 256,
    "data_sha256": "a" * 64,
    "points_sha256": None,
    "segments_sha256": None,
    "labels_sha256": None,
    "slice": True,
    "slice_scale": 1.25,
    "slice_box": None,
    "max_regions": 200000,
    "slice_points_sha256": None,
}


def make_audit(median=37, p90=12.5, spearman=0.25, segments=3) -> dict:
    summary = None
    if segments:
        summary = {"count": segments, "mean": median, "median": median, "p10": median, "p90": median,
                   "min": median, "max": median}
    dev_summary = None
    if segments:
        dev_summary = {"count": segments, "mean": p90, "median": p90, "p10": p90, "p90": p90, "min": p90, "max": p90}
    r = AuditResult(
        model=ModelInfo(path="m.onnx", sha256="0" * 64, input_shape=[3, 8, 8], output_shape=[10], neurons=64,
                        maxpool_windows=0, params=1000, macs=2000, opset=17, producer="t", input_name="x",
                        output_name="y"),
        settings=dict(SETTINGS),
        density=Density(
            segments=[SegmentDensity(regions=int(median), length=1.0, density=float(median), knots_per_layer={})
                      for _ in range(segments)],
            summary=summary,
        ),
        deviation=Deviation(segments=[SegmentDeviation(per_output=[p90], norm=p90) for _ in range(segments)],
                            summary=dev_summary, spearman_density=spearman),
        distance=Distance(),
    )
    return r.to_dict()


# ---------------------------------------------------------------- loading


def test_load_baseline_round_trip(tmp_path):
    d = make_audit()
    p = tmp_path / "audit.json"
    p.write_text(json.dumps(d))
    assert load_baseline(p) == d
    assert load_baseline(str(p)) == d


@pytest.mark.parametrize(
    "content, match",
    [
        (None, "not found"),
        ("{not json", "is not JSON"),
        ('{"density": NaN}', "is not JSON"),
        ("[1, 2]", "not a regionaudit result JSON"),
        ('{"hello": 1}', "not a regionaudit result JSON"),
        ('{"regionaudit": "0.1.0", "schema": 99, "settings": {}}', "schema 99"),
        ('{"regionaudit": "0.1.0", "schema": 1, "settings": {}}', "missing model, density, deviation, distance"),
        ('{"regionaudit": "0.1.0", "schema": 1, "settings": {}, "model": {}, "density": {}, "deviation": {},'
         ' "distance": {}}', "not a (complete|valid) regionaudit (audit|result) JSON"),
    ],
)
def test_load_baseline_errors(tmp_path, content, match):
    p = tmp_path / "base.json"
    if content is not None:
        p.write_text(content)
    with pytest.raises(RegionAuditError, match=match) as e:
        load_baseline(p)
    assert e.value.exit_code == 2 and "\n" not in str(e.value)
    assert str(p) in str(e.value)


def test_load_baseline_refuses_compare_result(tmp_path):
    d = {"a": make_audit(), "b": make_audit(), "paired": {}, "regionaudit": "0.1.0", "schema": 1}
    p = tmp_path / "cmp.json"
    p.write_text(json.dumps(d))
    with pytest.raises(GateError, match="compare"):
        load_baseline(p)


def test_load_result_accepts_compare_and_audit(tmp_path):
    cmp = tmp_path / "cmp.json"
    d = CompareResult(a=AuditResult.from_dict(make_audit()), b=AuditResult.from_dict(make_audit()),
                      paired=Paired(density=PairedMeasure([0, 0, 0], 0.0, None),
                                    deviation=PairedMeasure([0.0, 0.0, 0.0], 0.0, None))).to_dict()
    cmp.write_text(json.dumps(d))
    assert load_result(cmp) == d
    with pytest.raises(GateError, match="compare"):
        load_baseline(cmp)
    audit = tmp_path / "audit.json"
    audit.write_text(json.dumps(make_audit()))
    assert load_result(audit) == make_audit()
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**d, "paired": {}}))
    with pytest.raises(GateError, match="not a complete regionaudit result JSON"):
        load_result(broken)


def test_load_baseline_directory(tmp_path):
    with pytest.raises(GateError, match="not a file"):
        load_baseline(tmp_path)


# ---------------------------------------------------------------- settings


def test_baseline_settings_is_a_copy():
    d = make_audit()
    s = baseline_settings(d)
    assert s == SETTINGS
    s["input_shape"].append(1)
    assert d["settings"]["input_shape"] == [3, 8, 8]


def test_merge_fills_missing_settings_from_baseline():
    base = baseline_settings(make_audit())
    explicit = {k: None for k in PROBE_SETTINGS}
    explicit["device"] = "cpu"  # not a probe setting: passes through
    merged = merge_settings(explicit, base, list(PROBE_SETTINGS))
    for k in PROBE_SETTINGS:
        assert merged[k] == base[k]
    assert merged["device"] == "cpu"


def test_merge_accepts_equal_explicit_values():
    base = baseline_settings(make_audit())
    explicit = {"seed": 0, "pairs": 100, "input_shape": (3, 8, 8), "loop_radius": 2, "dtype": "float64"}
    merged = merge_settings(explicit, base, list(PROBE_SETTINGS))
    assert merged["seed"] == 0 and merged["pairs"] == 100 and merged["max_points"] == 100
    assert list(merged["input_shape"]) == [3, 8, 8]


def test_merge_conflict_names_option_and_both_values():
    base = baseline_settings(make_audit())
    with pytest.raises(BadOption) as e:
        merge_settings({"seed": 1, "pairs": None}, base, ["seed", "pairs"])
    msg = str(e.value)
    assert "--seed 1 conflicts with the baseline's seed 0" in msg
    assert "\n" not in msg and e.value.exit_code == 2


def test_merge_reports_every_conflict_at_once():
    base = baseline_settings(make_audit())
    explicit = {"seed": 1, "max_points": 5, "input_shape": [3, 16, 16], "data_sha256": "b" * 64,
                "max_knots": 1000}
    with pytest.raises(BadOption) as e:
        merge_settings(explicit, base, list(PROBE_SETTINGS))
    msg = str(e.value)
    assert "--seed 1 conflicts with the baseline's seed 0" in msg
    assert "--max-points 5 conflicts with the baseline's max_points 100" in msg
    assert "--input-shape 3,16,16 conflicts with the baseline's input_shape 3,8,8" in msg
    assert "--data sha256 bbbbbbbbbbbb… conflicts with the baseline's data_sha256 sha256 aaaaaaaaaaaa…" in msg
    assert "--max-knots 1000 conflicts with the baseline's max_knots (not set)" in msg


def test_a_value_given_where_the_baseline_recorded_no_effect_agrees(tmp_path):
    """The baseline records null for an option that changed nothing in its run (a loop option
    without loops, --pairs beside --segments, the slice's options with --no-slice): re-running
    the same command against it was refused ("--layout chw conflicts with the baseline's layout
    (not set)"). A null that means "no limit" (--max-knots) still conflicts with a value."""
    import numpy as np

    from regionaudit.options import UNUSED_WHEN_NULL, Options
    from regionaudit.probes import build_probes

    base = {"layout": None, "loop_radius": None, "pairs": None, "max_regions": None, "max_knots": None}
    given = {"layout": "chw", "loop_radius": 3.0, "pairs": 5, "max_regions": 5, "max_knots": None}
    assert merge_settings(given, base, list(base)) == given
    with pytest.raises(BadOption, match=r"--max-knots 9 conflicts with the baseline's max_knots \(not set\)"):
        merge_settings({**given, "max_knots": 9}, base, list(base))
    # a null --slice-box is the box from the data, not "no effect": another box is another slice
    with pytest.raises(BadOption, match=r"--slice-box .* conflicts with the baseline's slice_box \(not set\)"):
        merge_settings({"slice_box": (0.0, 1.0, 0.0, 1.0)}, {"slice_box": None}, ["slice_box"])
    # every option the probes leave unused is one whose null says so
    np.save(tmp_path / "s.npy", np.zeros((2, 2, 4)))
    np.save(tmp_path / "p.npy", np.zeros((2, 4)))
    for opts in (Options(), Options(segments=tmp_path / "s.npy", points=tmp_path / "p.npy")):
        assert set(build_probes((4,), opts).unused) <= set(UNUSED_WHEN_NULL)


def test_merge_key_missing_from_baseline_keeps_explicit():
    merged = merge_settings({"seed": 3, "loops": None}, {"pairs": 100}, ["seed", "loops", "pairs"])
    assert merged == {"seed": 3, "loops": None, "pairs": 100}


# ---------------------------------------------------------------- --max-increase parsing


@pytest.mark.parametrize(
    "spec, path, amount, percent",
    [
        ("density.summary.median=10%", "density.summary.median", "10", True),
        ("deviation.summary.p90=12.5%", "deviation.summary.p90", "12.5", True),
        ("density.summary.median=5", "density.summary.median", "5", False),
        (" density.summary.median = 0.5 % ", "density.summary.median", "0.5", True),
        ("distance.summary.median=1e-3", "distance.summary.median", "1e-3", False),
        ("model.params=0", "model.params", "0", False),
        # a node's name is taken whole, whatever it holds
        ("density.knots_per_layer.block 1/relu=x\ny = 10%", "density.knots_per_layer.block 1/relu=x\ny", "10", True),
    ],
)
def test_parse_increase(spec, path, amount, percent):
    b = parse_increase(spec)
    assert b == IncreaseBound(path=path, amount=amount, percent=percent)


@pytest.mark.parametrize("spec", ["density.summary.median", "density.summary.median=", "=10%",
                                  "density.summary.median=ten", "density.summary.median=10%%",
                                  "density.summary.median>10", "a=1=2", "density.summary.median=-5",
                                  "density.summary median=10%", "density.summary.median!=10"])
def test_parse_increase_malformed(spec):
    with pytest.raises(GateError) as e:
        parse_increase(spec)
    assert "\n" not in str(e.value)


def test_parse_increase_negative_says_why():
    with pytest.raises(GateError, match="must be >= 0"):
        parse_increase("density.summary.median=-5%")


# ---------------------------------------------------------------- --max-increase evaluation


@pytest.mark.parametrize(
    "now, spec, passed",
    [
        (44, "density.summary.median=10", True),  # +7 <= 10
        (47, "density.summary.median=10", True),  # exactly +10
        (48, "density.summary.median=10", False),  # +11
        (47.5, "density.summary.median=10.5", True),
        (47.5000001, "density.summary.median=10.5", False),
        (30, "density.summary.median=0", True),  # a decrease
        (37, "density.summary.median=0", True),
        (38, "density.summary.median=0", False),
        # percentages of 37: 10% is 3.7 -> boundary at 40.7 exactly as written
        (40.7, "density.summary.median=10%", True),
        (40.700001, "density.summary.median=10%", False),
        (40.1, "density.summary.median=10%", True),
        (20, "density.summary.median=0%", True),
        (37, "density.summary.median=0%", True),
        (37.000001, "density.summary.median=0%", False),
        (74, "density.summary.median=100%", True),
        (75, "density.summary.median=100%", False),
    ],
)
def test_increase_boundaries(now, spec, passed):
    [g] = evaluate_increases(make_audit(median=now), make_audit(median=37), [spec])
    assert g.passed is passed, g.message
    assert g.message.startswith("pass " if passed else "FAIL ")


def test_increase_message_and_value():
    [g] = evaluate_increases(make_audit(median=40.1), make_audit(median=37), ["density.summary.median=10%"])
    assert g.expr == "density.summary.median increase <= 10%"
    assert g.message == "pass density.summary.median increase <= 10% of baseline 37 (now 40.1, +8.4%)"
    assert g.value == pytest.approx(3.1)
    [a] = evaluate_increases(make_audit(median=48), make_audit(median=37), ["density.summary.median=10"])
    assert a.message == "FAIL density.summary.median increase <= 10 (baseline 37, now 48, +11)"
    assert a.value == 11 and isinstance(a.value, int)


def test_percent_bound_on_nonpositive_baseline_is_an_error():
    for base in (0, -0.5):
        with pytest.raises(GateError) as e:
            evaluate_increases(make_audit(spearman=0.1), make_audit(spearman=base), ["deviation.spearman_density=10%"])
        assert "positive baseline value" in str(e.value) and e.value.exit_code == 2
    # an absolute bound on the same value is fine
    [g] = evaluate_increases(make_audit(spearman=0.1), make_audit(spearman=0), ["deviation.spearman_density=0.1"])
    assert g.passed
    [g] = evaluate_increases(make_audit(spearman=0.1), make_audit(spearman=-0.5), ["deviation.spearman_density=0.5"])
    assert not g.passed


def test_increase_undefined_values_fail():
    # no segments now: summary null
    [g] = evaluate_increases(make_audit(segments=0), make_audit(), ["density.summary.median=10%"])
    assert not g.passed and g.value is None
    assert "undefined (null) now (no segments were measured)" in g.message
    [g] = evaluate_increases(make_audit(), make_audit(segments=0), ["density.summary.median=10%"])
    assert not g.passed and "undefined (null) in the baseline" in g.message
    [g] = evaluate_increases(make_audit(spearman=None), make_audit(spearman=None), ["deviation.spearman_density=1"])
    assert not g.passed and "now" in g.message and "baseline" in g.message


def test_increase_unknown_path_lists_valid():
    with pytest.raises(GateError) as e:
        evaluate_increases(make_audit(), make_audit(), ["density.summary.mediam=10%"])
    msg = str(e.value)
    assert msg.startswith("unknown metric path 'density.summary.mediam'; did you mean density.summary.median")
    assert "\n" not in msg


def test_increase_path_missing_in_baseline():
    base = make_audit()
    del base["deviation"]["spearman_density"]
    with pytest.raises(GateError, match="baseline has no metric 'deviation.spearman_density'"):
        evaluate_increases(make_audit(), base, ["deviation.spearman_density=1"])


def test_a_baseline_without_a_part_says_which_option_left_it_out():
    """A part the baseline's run did not measure (--init-reference 0, or no slice) is in the schema,
    null: the gate fails as undefined in the baseline and says why, not as a metric missing from
    an older version with hundreds of paths listed."""
    base, current = make_audit(), make_audit()
    base["reference"] = None
    current["reference"] = {"init": {"copies": 1, "segments": 3, "points": 2, "pooled": {"density": {"summary": {"median": 4}}}}}
    [g] = evaluate_increases(current, base, ["reference.init.pooled.density.summary.median=1"])
    assert not g.passed and "no initialisation reference was measured (--init-reference 0)" in g.message
    current["slice"] = {"regions": 5}
    base["settings"]["slice"] = True  # (a slice skipped: no three data rows span a plane)
    with pytest.raises(GateError) as e:
        evaluate_increases(current, base, ["slice.regions=1"])
    assert str(e.value) == ("the baseline has no metric 'slice.regions': its run skipped the 2-D slice (its notes say why); "
                            "make a new baseline that measures it")
    base["settings"]["slice"] = False
    with pytest.raises(GateError) as e:
        evaluate_increases(current, base, ["slice.regions=1"])
    assert str(e.value) == ("the baseline has no metric 'slice.regions': the run that wrote it did not measure it (--no-slice); "
                            "make a new baseline that does")


def test_several_increases():
    gates = evaluate_increases(
        make_audit(median=40, p90=13), make_audit(median=37, p90=12.5),
        ["density.summary.median=10%", "deviation.summary.p90=0.25", IncreaseBound("model.params", "0", False)],
    )
    assert [g.passed for g in gates] == [True, False, True]


def test_check_increases_before_the_audit():
    from regionaudit.gates.baseline import check_increases

    base = make_audit(median=37)
    assert check_increases(["density.summary.median=10%"], base) == [IncreaseBound("density.summary.median", "10", True)]
    with pytest.raises(GateError, match="unknown metric path 'density.summary.mediam'"):
        check_increases(["density.summary.mediam=10%"], base)
    with pytest.raises(GateError, match="needs --baseline"):
        check_increases(["density.summary.median=10%"])
    with pytest.raises(GateError, match="needs a positive baseline value"):
        check_increases(["density.summary.median=10%"], make_audit(median=0))
    assert check_increases(["density.summary.median=1"], make_audit(median=0))  # an absolute bound is fine


def test_increase_across_a_changed_definition_is_refused(monkeypatch):
    from regionaudit import result
    from regionaudit.gates import baseline
    from regionaudit.gates.baseline import check_increases

    monkeypatch.setattr(result, "SCHEMA", 3)
    monkeypatch.setattr(baseline, "SCHEMA", 3)
    monkeypatch.setattr(result, "CHANGED_DEFINITIONS", {2: ("density.per_length",), 3: ("deviation.summary",)})
    base = {**make_audit(), "schema": 1}  # written with schema 1
    with pytest.raises(GateError, match=r"baseline was written with schema 1 .* writes schema 3; .* changed in schema 3"):
        check_increases(["deviation.summary.p90=10%"], base)
    with pytest.raises(GateError, match="changed in schema 2"):
        evaluate_increases(make_audit(), base, ["density.per_length.median=1"])
    # a metric whose definition did not change is still compared, and so is a baseline written after the change
    assert check_increases(["density.summary.median=10%"], base)
    assert check_increases(["density.per_length.median=1"], {**base, "schema": 2})


def test_neurons_counted_anew_in_schema_2_are_not_compared_with_a_schema_1_baseline():
    """Schema 2 counts Clip, HardSigmoid and Abs units as neurons: a schema-1 value is another measure."""
    from regionaudit.gates.baseline import check_increases

    base = {**make_audit(), "schema": 1}
    for path in ("model.neurons=10%", "density.regions_per_neuron.median=1", "distance.scaled_summary.p90=1"):
        with pytest.raises(GateError, match=r"written with schema 1 and this regionaudit writes schema 4; .* changed in schema 2"):
            check_increases([path], base)
    assert check_increases(["density.summary.median=10%"], base)


def test_a_schema_3_baseline_is_not_compared_on_what_schema_4_redefined():
    """Schema 4 splits a single output's segments by its sign and counts a loop's vertex
    crossings: a schema-3 value of those is another measure; the others are still compared."""
    from regionaudit.gates.baseline import check_increases

    base = {**make_audit(), "schema": 3}
    with pytest.raises(GateError, match=r"written with schema 3 and this regionaudit writes schema 4; .* changed in schema 4"):
        check_increases(["density.by_class.same_class.summary.median=1"], base)
    assert check_increases(["density.summary.median=10%"], base)


def test_result_of_an_older_schema_loads(tmp_path):
    """A field added in a later schema has a default; a field this version does not know is ignored."""
    d = make_audit()
    del d["slice"], d["timing"], d["notes"]
    for seg in d["density"]["segments"]:
        seg.pop("truncated", None)
        seg.pop("knots", None)
        seg["from_a_newer_tool"] = 1
    d["model"]["unknown_record"] = {"x": 1}
    d["density"]["unknown_summary"] = None
    p = tmp_path / "old.json"
    p.write_text(json.dumps(d))
    assert load_result(p) == d  # the dict is kept as written: gates read what it holds
    r = AuditResult.from_dict(d)
    assert r.slice is None and r.timing == {} and r.notes == []
    assert [s.truncated for s in r.density.segments] == [False] * len(d["density"]["segments"])
    assert [s.regions for s in r.density.segments] == [s["regions"] for s in d["density"]["segments"]]
    assert "from_a_newer_tool" not in r.to_dict()["density"]["segments"][0]


def test_a_baseline_value_that_is_no_number_is_named():
    """A hand-edited baseline: a metric or a setting of the wrong type is a usage error naming it
    (before, a string median read as an unknown path, and a string `pairs` was an internal error)."""
    from regionaudit.gates.baseline import apply_baseline, check_increases
    from regionaudit.options import Options

    base = make_audit(median=37)
    base["density"]["summary"]["median"] = "x"
    with pytest.raises(GateError, match=r"^the baseline's density.summary.median is 'x', not a number or null"):
        check_increases(["density.summary.median=10%"], base)
    for key, value, message in [("pairs", "abc", "--pairs must be an integer, got 'abc'"),
                                ("slice_scale", [1], "--slice-scale must be a number, got \\[1\\]"),
                                ("input_shape", [64, "x"], "--input-shape must be an integer, got 'x'")]:
        base = make_audit()
        base["settings"][key] = value
        with pytest.raises(BadOption, match="^the baseline's settings do not hold valid options: " + message):
            apply_baseline(Options(), base)


def test_max_increase_on_a_class_the_baseline_slice_lacked():
    """A class no region predicted in the baseline's slice had 0 regions there."""
    base, cur = make_audit(), make_audit()
    base["slice"] = {"regions": 5, "classes": {"1": 5}}
    cur["slice"] = {"regions": 5, "classes": {"0": 3, "1": 2}}
    grew, fell = evaluate_increases(cur, base, ["slice.classes.0=1", "slice.classes.1=0"])
    assert (grew.passed, grew.value, fell.passed, fell.value) == (False, 3, True, -3)
