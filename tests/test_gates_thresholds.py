"""Threshold gates (`--fail-if`) on hand-built result dicts."""

from __future__ import annotations

import json
import re

import pytest

from regionaudit.errors import GateError, RegionAuditError
from regionaudit.gates.catalogue import SUMMARY_KEYS, gateable_paths, lookup, schema_skeleton
from regionaudit.gates.thresholds import any_failed, evaluate_gates, format_gate_line, parse_gate
from regionaudit.result import (
    AuditResult,
    CompareResult,
    Density,
    Deviation,
    Distance,
    GateResult,
    ModelInfo,
    Paired,
    PairedMeasure,
    PointDistance,
    SegmentDensity,
    SegmentDeviation,
)


def summary(values):
    if not values:
        return None
    s = sorted(values)
    return {
        "count": len(s),
        "mean": sum(s) / len(s),
        "median": s[len(s) // 2],
        "p10": s[0],
        "p90": s[-1],
        "min": s[0],
        "max": s[-1],
    }


def make_result(regions=(3, 5, 8), norms=None, distances=(0.5, 0.25), neurons=16, notes=()) -> AuditResult:
    regions = list(regions)
    norms = list(norms) if norms is not None else [0.1 * r for r in regions]
    segs = [SegmentDensity(regions=r, length=2.0, density=r / 2.0, knots_per_layer={"/fc1/Relu": r - 1}) for r in regions]
    devs = [SegmentDeviation(per_output=[n], norm=n) for n in norms]
    pts = [PointDistance(distance=d, node="/fc1/Relu", unit=0, scaled=d * neurons) for d in distances]
    return AuditResult(
        model=ModelInfo(
            path="m.onnx",
            sha256="0" * 64,
            input_shape=[4],
            output_shape=[2],
            neurons=neurons,
            maxpool_windows=0,
            params=123,
            macs=456,
            opset=17,
            producer="test",
            input_name="x",
            output_name="y",
            nodes=[{"name": "/fc1/Relu", "neurons": neurons}],
            validation={"max_abs_err": 1e-12, "max_rel_err": 2e-13},
        ),
        settings={"seed": 0, "pairs": len(regions), "max_points": len(distances), "dtype": "float64"},
        density=Density(
            segments=segs,
            summary=summary(regions),
            per_length=summary([s.density for s in segs]),
            regions_per_neuron=summary([r / neurons for r in regions]) if neurons else None,
            knots_per_layer={"/fc1/Relu": sum(r - 1 for r in regions)},
        ),
        deviation=Deviation(
            segments=devs,
            summary=summary(norms),
            spearman_density=0.5 if len(regions) >= 2 else None,
        ),
        distance=Distance(
            points=pts,
            summary=summary(list(distances)),
            scaled_summary=summary([d * neurons for d in distances]),
        ),
        notes=list(notes),
        timing={"total_s": 1.5, "density_s": 0.75},
    )


@pytest.fixture
def result() -> dict:
    return make_result().to_dict()


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "expr, path, op, threshold",
    [
        ("density.summary.median > 200", "density.summary.median", ">", 200.0),
        ("density.summary.median>200", "density.summary.median", ">", 200.0),
        ("  distance.summary.median   <   1e-4 ", "distance.summary.median", "<", 1e-4),
        ("deviation.spearman_density <= -0.5", "deviation.spearman_density", "<=", -0.5),
        ("model.neurons>=1E3", "model.neurons", ">=", 1000.0),
        ("model.params == 123", "model.params", "==", 123.0),
        ("model.params!=.5", "model.params", "!=", 0.5),
        ("paired.deviation.fraction_positive > +0.5", "paired.deviation.fraction_positive", ">", 0.5),
        # a node's name is taken whole: all before the operator whose number ends the expression
        ("density.knots_per_layer.a > b\nc>=2", "density.knots_per_layer.a > b\nc", ">=", 2.0),
        ("a.density.knots_per_layer.x<1 y < 1", "a.density.knots_per_layer.x<1 y", "<", 1.0),
    ],
)
def test_parse_gate(expr, path, op, threshold):
    g = parse_gate(expr)
    assert (g.path, g.op, g.threshold) == (path, op, threshold)
    assert g.expr == f"{path} {op} {g.number}"


@pytest.mark.parametrize(
    "expr",
    ["", "density.summary.median", "density.summary.median = 3", "density.summary.median => 3",
     "> 3", "density.summary.median > abc", "density.summary.median > 3 4", "a..b > 1",
     "density.summary.median > nan", "density.summary.median > inf", "x < 1e400", "x >> 1",
     "density.summary median > 3", "density.knots_per_layer. > 3"],
)
def test_parse_gate_malformed(expr):
    with pytest.raises(GateError) as e:
        parse_gate(expr)
    msg = str(e.value)
    assert "\n" not in msg
    assert isinstance(e.value, RegionAuditError) and e.value.exit_code == 2
    if "not a finite number" not in msg:
        assert "PATH OP NUMBER" in msg


# ---------------------------------------------------------------- paths


def test_gateable_paths_has_scalars_and_summaries_but_no_lists(result):
    paths = gateable_paths(result)
    for p in [
        "model.neurons",
        "model.params",
        "model.macs",
        "model.maxpool_windows",
        "model.validation.max_rel_err",
        "density.summary.median",
        "density.per_length.p90",
        "density.regions_per_neuron.mean",
        "deviation.spearman_density",
        "distance.scaled_summary.min",
        "timing.total_s",
        "density.knots_per_layer./fc1/Relu",
    ]:
        assert p in paths, p
    counts = {"reference.init.segments", "reference.init.points"}  # (the init reference's numbers of each: counts, not lists)
    assert not any(("segments" in p or "points" in p or "nodes" in p) and p not in counts for p in paths)
    assert not any(p.startswith(("settings", "schema", "regionaudit", "gates", "notes")) for p in paths)
    assert "slice" not in paths
    assert "model.sha256" not in paths and "model.input_shape" not in paths
    assert len(paths) == len(set(paths))
    # null summaries (no loops were run) are still listed by their keys
    for k in SUMMARY_KEYS:
        assert f"density.path_summary.{k}" in paths
        assert f"deviation.path_summary.{k}" in paths
    assert "density.path_summary" not in paths


def test_gateable_paths_without_a_result():
    paths = gateable_paths(None)
    assert paths[:4] == ["model.neurons", "model.maxpool_windows", "model.params", "model.macs"]
    for p in ["model.validation.max_rel_err", "density.summary.median", "density.per_length.p90",
              "deviation.spearman_density", "distance.scaled_summary.max", "deviation.path_summary.min"]:
        assert p in paths
    assert len(paths) == len(set(paths))
    # in JSON order: a summary's keys stay together, where the summary is
    i = paths.index("density.summary.count")
    assert paths[i : i + len(SUMMARY_KEYS)] == [f"density.summary.{k}" for k in SUMMARY_KEYS]
    assert paths.index("density.summary.max") < paths.index("deviation.summary.count") < paths.index(
        "deviation.spearman_density") < paths.index("distance.summary.count")
    cmp = gateable_paths(schema_skeleton(compare=True))
    assert "paired.deviation.fraction_positive" in cmp and "b.distance.summary.p90" in cmp
    assert "paired.density.summary.median" in cmp


def test_gateable_paths_survive_json_round_trip(result):
    assert gateable_paths(json.loads(json.dumps(result))) == gateable_paths(result)


def test_no_segments_summary_paths_still_valid():
    d = make_result(regions=(), norms=()).to_dict()
    assert d["density"]["summary"] is None
    paths = gateable_paths(d)
    for base in ("density.summary", "density.per_length", "density.regions_per_neuron", "deviation.summary"):
        for k in SUMMARY_KEYS:
            assert f"{base}.{k}" in paths
    assert lookup(d, "density.summary.median") is None
    assert lookup(d, "deviation.spearman_density") is None


def test_lookup_values(result):
    assert lookup(result, "density.summary.median") == 5
    assert lookup(result, "model.neurons") == 16
    assert lookup(result, "model.validation.max_rel_err") == 2e-13
    assert lookup(result, "density.knots_per_layer./fc1/Relu") == 2 + 4 + 7
    assert lookup(result, "timing.total_s") == 1.5


def test_lookup_key_with_dots():
    r = make_result()
    r.density.knots_per_layer = {"layer1.relu": 3}
    d = r.to_dict()
    assert "density.knots_per_layer.layer1.relu" in gateable_paths(d)
    assert lookup(d, "density.knots_per_layer.layer1.relu") == 3


@pytest.mark.parametrize("path", ["density.summary.mediann", "density.segments", "density.summary",
                                  "settings.seed", "model.path", "nope", "density.segments.0.regions"])
def test_lookup_unknown_path_lists_valid_ones(result, path):
    with pytest.raises(GateError) as e:
        lookup(result, path)
    msg = str(e.value)
    assert msg.startswith(f"unknown metric path '{path}'; ")
    assert msg.endswith(f"(`regionaudit metrics RESULT.json` lists all {len(gateable_paths(result))})")
    assert "\n" not in msg and len(msg) < 300  # the closest paths, not all of them
    if path == "density.summary.mediann":
        assert "did you mean density.summary.median or" in msg  # the closest first


# ---------------------------------------------------------------- evaluation


@pytest.mark.parametrize(
    "op, fails_at, fails_below, fails_above",
    [
        ("<", False, True, False),
        ("<=", True, True, False),
        (">", False, False, True),
        (">=", True, False, True),
        ("==", True, False, False),
        ("!=", False, True, True),
    ],
)
def test_every_operator_at_and_around_threshold(result, op, fails_at, fails_below, fails_above):
    # density.summary.median is 5 (an int); timing.total_s is 1.5 (a float)
    for path, at, below, above in [
        ("density.summary.median", "5", "5.5", "4.5"),
        ("timing.total_s", "1.5", "1.5000001", "1.4999999"),
        ("model.validation.max_rel_err", "2e-13", "2.0000001e-13", "1.9999999e-13"),
    ]:
        # "fails_below": the value is below the threshold, i.e. threshold above the value
        [g_at, g_below, g_above] = evaluate_gates(result, [f"{path} {op} {t}" for t in (at, below, above)])
        assert g_at.passed is (not fails_at), (path, op, "at")
        assert g_below.passed is (not fails_below), (path, op, "below")
        assert g_above.passed is (not fails_above), (path, op, "above")


def test_threshold_text_equal_to_value_is_equal():
    r = make_result()
    r.timing["total_s"] = 0.1 + 0.2  # 0.30000000000000004: not 0.3
    r.model.validation["max_rel_err"] = 1e-4
    d = r.to_dict()
    [a, b, c] = evaluate_gates(d, ["timing.total_s > 0.3", "model.validation.max_rel_err > 1e-4",
                                   "model.validation.max_rel_err >= 0.0001"])
    assert not a.passed  # the JSON value 0.30000000000000004 really is > 0.3
    assert b.passed
    assert not c.passed


def test_messages(result):
    [f, p] = evaluate_gates(result, ["density.summary.median > 4", "density.summary.median > 200"])
    assert (f.passed, f.value) == (False, 5)
    assert f.message == "FAIL density.summary.median > 4: value 5"
    assert (p.passed, p.value) == (True, 5)
    assert p.message == "pass density.summary.median > 200: value 5"
    assert format_gate_line(f) == "FAIL density.summary.median > 4: value 5"
    assert format_gate_line(p) == "pass density.summary.median > 200: value 5"
    assert any_failed([p, f]) and not any_failed([p]) and not any_failed([])


def test_expr_is_normalised(result):
    [g] = evaluate_gates(result, ["  distance.summary.median<1e-4 "])
    assert g.expr == "distance.summary.median < 1e-4"
    assert g.passed  # median distance is 0.5


def test_format_gate_line_without_message():
    assert format_gate_line(GateResult("x > 1", 2.5, False)) == "FAIL x > 1: value 2.5"
    assert format_gate_line(GateResult("x > 1", None, False)) == "FAIL x > 1: value null"
    assert format_gate_line(GateResult("x > 1", 0.1 + 0.2, True)) == "pass x > 1: value 0.30000000000000004"


def test_null_metric_fails_and_says_undefined():
    d = make_result(regions=(), norms=()).to_dict()
    gates = evaluate_gates(d, ["density.summary.median > 200", "density.summary.median < 200",
                               "deviation.spearman_density > 0.9", "model.neurons > 1000"])
    g, g2, s, ok = gates
    for gg in (g, g2):
        assert gg.passed is False and gg.value is None
        assert "metric density.summary.median is undefined (null): no segments were measured" in gg.message
    assert s.passed is False and "undefined (null)" in s.message and "at least 3 segments, found 0" in s.message
    assert ok.passed is True
    assert "\n" not in format_gate_line(g)


def test_null_metric_reason_from_notes():
    r = make_result(distances=(), notes=["distance.summary is null: every point lies on a boundary"])
    r.distance.points = [PointDistance(distance=None, node=None, unit=None, scaled=None)]
    [g] = evaluate_gates(r.to_dict(), ["distance.summary.median < 1e-4"])
    assert not g.passed
    assert "every point lies on a boundary" in g.message


def test_no_neurons_reason():
    r = make_result(neurons=0)
    [g] = evaluate_gates(r.to_dict(), ["density.regions_per_neuron.median > 1"])
    assert not g.passed and "no ReLU-type units" in g.message


def test_all_expressions_checked_before_evaluating(result):
    with pytest.raises(GateError, match="unknown metric path 'density.summary.medain'"):
        evaluate_gates(result, ["density.summary.median > 1", "density.summary.medain > 1"])
    with pytest.raises(GateError, match="bad gate"):
        evaluate_gates(result, ["density.summary.median > 1", "density.summary.median >"])


def test_empty_gate_list(result):
    assert evaluate_gates(result, []) == []


# ---------------------------------------------------------------- compare results


def make_compare() -> dict:
    a, b = make_result(regions=(3, 5, 8)), make_result(regions=(4, 5, 6))
    paired = Paired(
        density=PairedMeasure(differences=[1, 0, -2], fraction_positive=1 / 3, summary=summary([1, 0, -2])),
        deviation=PairedMeasure(differences=[0.1, 0.0, -0.2], fraction_positive=1 / 3, summary=None),
    )
    return CompareResult(a=a, b=b, paired=paired, timing={"total_s": 3.0}).to_dict()


def test_compare_paths():
    d = make_compare()
    paths = gateable_paths(d)
    for p in ["a.density.summary.median", "b.density.summary.median", "a.model.neurons",
              "paired.density.fraction_positive", "paired.deviation.fraction_positive",
              "paired.density.summary.median", "paired.deviation.summary.p90", "timing.total_s",
              "b.deviation.path_summary.max"]:
        assert p in paths, p
    assert not any("differences" in p or "settings" in p for p in paths)
    assert lookup(d, "paired.density.summary.min") == -2
    assert lookup(d, "paired.deviation.summary.median") is None


def test_compare_gate():
    d = make_compare()
    [g, n] = evaluate_gates(d, ["paired.deviation.fraction_positive > 0.5", "paired.deviation.summary.mean > 0"])
    assert g.passed and g.value == pytest.approx(1 / 3)
    assert not n.passed and "undefined (null)" in n.message


def test_check_gates_before_the_audit():
    from regionaudit.gates.catalogue import could_exist
    from regionaudit.gates.thresholds import check_gates

    [g] = check_gates(["density.summary.median > 200"])
    assert g.path == "density.summary.median"
    check_gates(["density.knots_per_layer./fc1/Relu > 10", "timing.total_s > 60", "model.neurons > 1"])
    with pytest.raises(GateError, match="unknown metric path 'density.nope'; "):
        check_gates(["density.nope > 1"])
    with pytest.raises(GateError, match="unknown metric path 'paired.density.fraction_positive'"):
        check_gates(["paired.density.fraction_positive > 0.5"])
    check_gates(["paired.density.fraction_positive > 0.5", "a.density.summary.median > 1"], compare=True)
    with pytest.raises(GateError):
        check_gates(["density.summary.median > 1"], compare=True)  # compare paths start with a./b./paired.
    assert not could_exist("timing.") and not could_exist("density.segments")



@pytest.mark.parametrize("compare, path, closest", [
    (False, "timing.total", "timing.total_s"),
    (False, "timing.densty_s", "timing.density_s"),
    (False, "model.validation.max_err", "model.validation.max_abs_err"),
    (True, "a.timing.totl_s", "a.timing.total_s"),
    (True, "timing.density_s", "a.timing.density_s"),
])
def test_a_misspelt_timing_or_validation_path_is_refused_before_the_audit(compare, path, closest):
    """The stages a result times and the validation's numbers are known before the audit: a gate
    on another name is refused then, with the closest names, not after the whole analysis."""
    from regionaudit.gates.catalogue import could_exist
    from regionaudit.gates.thresholds import check_gates

    assert not could_exist(path, compare)
    with pytest.raises(GateError, match=rf"unknown metric path '{re.escape(path)}'; did you mean [^?]*\b{re.escape(closest)}\b"):
        check_gates([f"{path} > 1"], compare=compare)
    check_gates([f"{closest} > 1"], compare=compare)

def test_a_path_of_the_other_command_is_named_as_such():
    """A compare gate on a slice metric, or an audit gate on a compare metric, says why it cannot
    be gated instead of offering unrelated paths (before: "did you mean a.distance.directions?")."""
    from regionaudit.gates.thresholds import check_gates

    with pytest.raises(GateError, match=r"^unknown metric path 'a.slice.regions': compare measures no 2-D slice; "
                                        r"audit the model alone"):
        check_gates(["a.slice.regions > 3"], compare=True)
    with pytest.raises(GateError, match="'b.slice.decision_boundary.length': compare measures no 2-D slice"):
        check_gates(["b.slice.decision_boundary.length > 3"], compare=True)
    for path in ("paired.density.fraction_positive", "b.density.summary.median"):
        with pytest.raises(GateError, match=rf"^unknown metric path '{path}': a.\*, b.\* and paired.\* are metrics of "
                                            r"regionaudit compare A.onnx B.onnx$"):
            check_gates([f"{path} > 0.5"])
    with pytest.raises(GateError, match="did you mean b.distance.summary.median"):  # a misspelt compare path as before
        check_gates(["b.distance.sumary.median > 1"], compare=True)


def test_compare_refuses_a_slice_timing_before_the_audit_and_never_suggests_it():
    """A comparison's audits measure no slice, so they time none: a gate on `a.timing.slice_s` is
    refused before the analyses (as `a.slice.*` is), and a misspelt stage is not offered it."""
    from regionaudit.gates.catalogue import could_exist
    from regionaudit.gates.thresholds import check_gates

    assert not could_exist("a.timing.slice_s", compare=True) and could_exist("timing.slice_s")
    with pytest.raises(GateError, match=r"^unknown metric path 'b.timing.slice_s': compare measures no 2-D slice"):
        check_gates(["b.timing.slice_s > 1"], compare=True)
    with pytest.raises(GateError) as err:
        check_gates(["a.timing.slise_s > 1"], compare=True)
    assert "did you mean" in str(err.value) and "slice_s" not in str(err.value)


def test_a_by_class_side_without_segments_is_an_undefined_gate_not_an_unknown_path():
    """With every segment same-class, the different-class summaries are null: a gate on them
    fails and says why, on any data, instead of being refused as unknown after the audit."""
    r = make_result()
    r.density.by_class = {"source": "labels",
                          "same_class": {"count": 3, "summary": summary([3, 5, 8]), "per_length": summary([1.5, 2.5, 4.0])},
                          "different_class": {"count": 0, "summary": None, "per_length": None}}
    r.deviation.by_class = {"source": "labels", "same_class": {"count": 3, "summary": summary([0.3, 0.5, 0.8])},
                            "different_class": {"count": 0, "summary": None}}
    d = r.to_dict()
    paths = gateable_paths(d)
    for measure in ("density.by_class.different_class.summary", "density.by_class.different_class.per_length",
                    "deviation.by_class.different_class.summary"):
        assert {f"{measure}.{k}" for k in SUMMARY_KEYS} <= set(paths)
    g, ok = evaluate_gates(d, ["deviation.by_class.different_class.summary.median > 1",
                               "density.by_class.same_class.summary.median > 5"])
    assert g.passed is False and g.value is None
    assert g.message.endswith("is undefined (null): no different-class segments were measured")
    assert ok.passed is True and ok.value == 5


def test_a_class_no_slice_region_predicts_counts_zero():
    """`slice.classes` lists the classes present; any other class of the model has 0 regions."""
    d = make_result().to_dict()  # two outputs: classes 0 and 1
    d["slice"] = {"regions": 16, "classes": {"1": 16}}
    assert lookup(d, "slice.classes.0") == 0 and lookup(d, "slice.classes.1") == 16
    low, high = evaluate_gates(d, ["slice.classes.0 < 1", "slice.classes.0 > 5"])
    assert (low.passed, low.value, high.passed) == (False, 0, True)
    for path in ("slice.classes.2", "slice.classes.01", "slice.classes.-1"):
        with pytest.raises(GateError, match="unknown metric path"):
            evaluate_gates(d, [f"{path} > 1"])
    d["model"]["output_shape"] = [1]  # a single output: its sign is the class, 0 or 1
    assert lookup(d, "slice.classes.0") == 0
    with pytest.raises(GateError, match="unknown metric path"):
        lookup(d, "slice.classes.2")
    d["slice"] = None  # no slice measured: no class count
    with pytest.raises(GateError, match="unknown metric path"):
        lookup(d, "slice.classes.0")


def test_a_slice_class_the_model_lacks_is_refused_before_the_audit():
    from regionaudit.gates.catalogue import check_node_paths

    check_node_paths(["slice.classes.9", "density.summary.median"], ["/fc1/Relu"], 10)
    check_node_paths(["slice.classes.1"], ["/fc1/Relu"], 1)
    for path, n in (("slice.classes.10", 10), ("slice.classes.2", 1), ("slice.classes.x", 10)):
        with pytest.raises(GateError, match=rf"'{path}': the model's predicted classes are 0 to"):
            check_node_paths([path], ["/fc1/Relu"], n)


def test_a_per_layer_path_naming_no_kink_node_says_which_exist():
    from regionaudit.gates.catalogue import check_node_paths

    with pytest.raises(GateError, match=r"no kink node of this model has that name; did you mean density.knots_per_layer./fc1/Relu "):
        check_node_paths(["density.knots_per_layer./fc1/Relu2"], ["/fc1/Relu", "/fc2/Relu"])
    with pytest.raises(GateError, match=r"the model's kink nodes are '/fc1/Relu', '/fc2/Relu'$"):
        check_node_paths(["slice.boundary_length_per_layer.zzz"], ["/fc1/Relu", "/fc2/Relu"])


def test_the_reports_time_is_refused_before_the_audit_with_its_reason():
    """The report, which shows the gates' results, is made after them: no gate can read its time."""
    from regionaudit.gates.catalogue import check_paths

    with pytest.raises(GateError, match=r"'timing.report_s'; it is measured after the gates are evaluated"):
        check_paths(["timing.report_s"])
    d = make_result().to_dict()
    d["timing"] = {"total_s": 1.0, "report_s": 0.5}
    assert "timing.total_s" in gateable_paths(d) and "timing.report_s" not in gateable_paths(d)
