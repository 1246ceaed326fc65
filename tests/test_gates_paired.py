"""Paired differences B − A between two hand-built audits."""

from __future__ import annotations

import json

import pytest

from regionaudit.errors import BadOption
from regionaudit.gates.paired import paired_measures
from regionaudit.gates.thresholds import evaluate_gates
from regionaudit.result import (
    AuditResult,
    CompareResult,
    Density,
    Deviation,
    Distance,
    ModelInfo,
    SegmentDensity,
    SegmentDeviation,
)


def make_audit(regions, norms, lengths=None) -> AuditResult:
    lengths = lengths or [1.5] * len(regions)
    return AuditResult(
        model=ModelInfo(path="m.onnx", sha256="0" * 64, input_shape=[2], output_shape=[3], neurons=8,
                        maxpool_windows=0, params=50, macs=50, opset=17, producer="t", input_name="x",
                        output_name="y"),
        settings={"seed": 0, "pairs": len(regions)},
        density=Density(segments=[SegmentDensity(regions=r, length=L, density=r / L, knots_per_layer={})
                                  for r, L in zip(regions, lengths)]),
        deviation=Deviation(segments=[SegmentDeviation(per_output=[n], norm=n) for n in norms]),
        distance=Distance(),
    )


def test_differences_in_probe_order():
    a = make_audit([3, 5, 8, 2], [0.5, 1.0, 2.0, 0.25])
    b = make_audit([4, 5, 6, 9], [0.75, 0.5, 2.0, 0.5])
    p = paired_measures(a, b)
    assert p.density.differences == [1, 0, -2, 7]
    assert all(isinstance(d, int) for d in p.density.differences)
    assert p.deviation.differences == [0.25, -0.5, 0.0, 0.25]
    assert p.density.fraction_positive == 0.5  # 1 and 7; a tie is not positive
    assert p.deviation.fraction_positive == 0.5
    assert p.density.summary["count"] == p.deviation.summary["count"] == 4
    assert p.density.summary["min"] == -2 and p.density.summary["max"] == 7


def test_swapping_a_and_b_negates():
    a = make_audit([3, 5, 8], [0.5, 1.0, 2.0])
    b = make_audit([4, 5, 6], [0.75, 0.5, 2.5])
    ab, ba = paired_measures(a, b), paired_measures(b, a)
    assert ba.density.differences == [-d for d in ab.density.differences]
    assert ba.deviation.differences == [-d for d in ab.deviation.differences]
    assert ab.density.fraction_positive == pytest.approx(1 / 3)
    assert ba.density.fraction_positive == pytest.approx(1 / 3)
    assert ab.deviation.fraction_positive == pytest.approx(2 / 3)


def test_identical_audits():
    a = make_audit([3, 5], [0.5, 1.0])
    p = paired_measures(a, a)
    assert p.density.differences == [0, 0]
    assert p.density.fraction_positive == 0.0
    assert p.deviation.fraction_positive == 0.0


def test_no_segments():
    p = paired_measures(make_audit([], []), make_audit([], []))
    assert p.density.differences == [] and p.deviation.differences == []
    assert p.density.fraction_positive is None and p.density.summary is None
    assert p.deviation.fraction_positive is None and p.deviation.summary is None


def test_mismatched_segment_counts_refused():
    with pytest.raises(BadOption, match="A has 3 segments and B has 2"):
        paired_measures(make_audit([1, 2, 3], [0.1, 0.2, 0.3]), make_audit([1, 2], [0.1, 0.2]))
    a = make_audit([1, 2], [0.1, 0.2])
    b = make_audit([1, 2], [0.1])
    with pytest.raises(BadOption, match="deviation segments"):
        paired_measures(a, b)


def test_different_probes_refused():
    a = make_audit([1, 2], [0.1, 0.2], lengths=[1.0, 2.0])
    b = make_audit([1, 2], [0.1, 0.2], lengths=[1.0, 2.5])
    with pytest.raises(BadOption, match="segment 1 has length"):
        paired_measures(a, b)


def test_compare_result_json_and_gate():
    a = make_audit([3, 5, 8], [0.5, 1.0, 2.0])
    b = make_audit([4, 6, 9], [0.75, 0.5, 2.5])
    c = CompareResult(a=a, b=b, paired=paired_measures(a, b))
    d = json.loads(c.to_json())
    assert d["paired"]["density"]["differences"] == [1, 1, 1]
    [g] = evaluate_gates(d, ["paired.deviation.fraction_positive > 0.5"])
    assert not g.passed and g.value == pytest.approx(2 / 3)
    assert CompareResult.from_dict(d).paired == c.paired


def test_with_real_summary():
    """Paired summaries are the analyzers' summaries of B - A."""
    from regionaudit.analysis import stats

    a = make_audit([3, 5, 8, 2], [0.5, 1.0, 2.0, 0.25])
    b = make_audit([4, 5, 6, 9], [0.75, 0.5, 2.0, 0.5])
    p = paired_measures(a, b)
    assert p.density.summary == stats.summary([1, 0, -2, 7])
    assert p.deviation.summary == stats.summary([0.25, -0.5, 0.0, 0.25])
    for s in (p.density.summary, p.deviation.summary):
        assert set(s) >= {"count", "mean", "median", "p10", "p90", "min", "max"}
        assert s["count"] == 4
    assert p.density.summary["min"] == -2 and p.density.summary["max"] == 7
    assert p.density.summary["mean"] == pytest.approx(1.5)


def test_segments_cut_short_have_no_difference():
    a = make_audit([3, 5, 8], [0.5, 1.0, 2.0])
    b = make_audit([4, 6, 9], [0.75, 0.5, 2.5])
    b.density.segments[1].truncated = True  # a lower bound: B - A would mean nothing
    b.deviation.segments[1] = SegmentDeviation(per_output=None, norm=None)
    p = paired_measures(a, b)
    assert p.density.differences == [1, None, 1] and p.density.fraction_positive == 1.0
    assert p.deviation.differences == [0.25, None, 0.5] and p.density.summary["count"] == 2


def test_the_paired_tests_and_distance_are_gateable_before_and_after_the_run():
    """The README lists paired.*.tests.* and paired.distance.*: the check before the analysis took
    them for unknown paths (exit 2), since its empty compare result had no tests and no distance."""
    from regionaudit.analysis.stats import paired_tests
    from regionaudit.gates.catalogue import gateable_paths, schema_skeleton
    from regionaudit.gates.thresholds import check_gates

    paths = ["paired.density.tests.wilcoxon_p_value", "paired.deviation.tests.sign_test_p_value",
             "paired.distance.fraction_positive", "paired.distance.tests.sign_test_nonzero"]
    check_gates([f"{p} < 0.05" for p in paths], compare=True)
    assert set(schema_skeleton(True)["paired"]["density"]["tests"]) == set(paired_tests([1.0, -2.0]))
    a = make_audit([3, 5, 8, 2, 7, 4], [0.5, 1.0, 2.0, 1.5, 0.2, 0.3])
    b = make_audit([4, 6, 9, 5, 9, 8], [0.75, 0.5, 2.5, 1.0, 0.1, 0.9])
    d = json.loads(CompareResult(a=a, b=b, paired=paired_measures(a, b)).to_json())
    assert set(paths[:2]) <= set(gateable_paths(d))
    [g] = evaluate_gates(d, ["paired.density.tests.sign_test_p_value < 0.05"])
    assert g.passed is False and g.value == pytest.approx(2 / 64)  # (a fail-if gate) 6 of 6 positive: 2 * 0.5^6


def _every_segment_cut_short_in_a() -> dict:
    """A comparison's JSON whose two segments --max-knots cut short in A: no density difference."""
    a, b = make_audit([3, 5], [0.5, 1.0]), make_audit([4, 6], [0.75, 0.5])
    for seg in a.density.segments:
        seg.truncated = True
    return json.loads(CompareResult(a=a, b=b, paired=paired_measures(a, b)).to_json())


def test_a_paired_test_without_pairs_is_an_undefined_gate_not_an_unknown_path():
    """No defined difference (every segment cut short) and no points: the tests' and the distance's
    paths stay, null, so the gate checked before the run fails as undefined after it (exit 1),
    instead of being refused as unknown once both analyses have run."""
    d = _every_segment_cut_short_in_a()
    gates = evaluate_gates(d, ["paired.density.tests.wilcoxon_p_value < 0.05", "paired.distance.fraction_positive > 0.5"])
    assert [(g.passed, g.value) for g in gates] == [(False, None), (False, None)]
    assert all("undefined (null)" in g.message for g in gates)


def test_a_paired_gate_with_every_pair_cut_short_says_why():
    """Every segment cut short in A: the paired summary and fraction are null, and the gate's
    line says why (the pairs were compared, but none has a difference)."""
    d = _every_segment_cut_short_in_a()
    gates = evaluate_gates(d, ["paired.density.summary.median > 0", "paired.density.fraction_positive > 0.5"])
    assert [(g.passed, g.value) for g in gates] == [(False, None), (False, None)]
    assert all("every segment was cut short by --max-knots in A or B" in g.message for g in gates), gates
    [dev] = evaluate_gates(d, ["paired.deviation.summary.median > 0"])  # (deviations were measured in full)
    assert dev.value is not None and "cut short" not in dev.message
