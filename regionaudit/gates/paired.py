"""Paired differences between two audits on the same probes (`regionaudit compare A B`).

Per segment, in probe order, B − A: density differences in regions (ints), deviation differences in
deviation norm; `fraction_positive` is the share of segments where B is larger (Gamba et al. 2022,
Table 2). Refuses audits whose segments are not the same probes. Each measure carries the Wilcoxon
signed-rank and sign-test p-values of its differences; boundary distances pair up on the same points.
"""

from __future__ import annotations

import math

from regionaudit.analysis.stats import paired_tests, summary
from regionaudit.errors import BadOption
from regionaudit.result import AuditResult, Paired, PairedMeasure

# Segment lengths of the same probe agree to rounding; anything more means different probes.
_LENGTH_RTOL = 1e-9


def _measure(differences: list) -> PairedMeasure:
    defined = [d for d in differences if d is not None]
    if not defined:  # (the tests' keys stay, null: a gate on them fails as undefined, not unknown)
        return PairedMeasure(differences=differences, fraction_positive=None, summary=None,
                             tests=dict.fromkeys(paired_tests([])))
    positive = sum(1 for d in defined if d > 0)
    return PairedMeasure(
        differences=differences,
        fraction_positive=positive / len(defined),
        summary=summary(defined),
        tests=paired_tests(defined),
    )


def _check_same_probes(a: AuditResult, b: AuditResult) -> None:
    na, nb = len(a.density.segments), len(b.density.segments)
    if na != nb:
        raise BadOption(f"cannot pair the audits: A has {na} segments and B has {nb}; both must use the same probes")
    da, db = len(a.deviation.segments), len(b.deviation.segments)
    if da != db:
        raise BadOption(
            f"cannot pair the audits: A has {da} deviation segments and B has {db}; both must use the same probes"
        )
    for i, (sa, sb) in enumerate(zip(a.density.segments, b.density.segments)):
        la, lb = sa.length, sb.length
        if la is None or lb is None:
            continue
        if not math.isclose(la, lb, rel_tol=_LENGTH_RTOL, abs_tol=1e-12):
            raise BadOption(
                f"cannot pair the audits: segment {i} has length {la:g} in A and {lb:g} in B; "
                "both must use the same probes"
            )


def paired_measures(a: AuditResult, b: AuditResult) -> Paired:
    """B − A per segment for density (regions) and deviation (norm), with fraction_positive and summaries."""
    _check_same_probes(a, b)
    # a count cut short by --max-knots is a lower bound: the difference of two is no difference
    density = [
        None if (sa.truncated or sb.truncated) else sb.regions - sa.regions
        for sa, sb in zip(a.density.segments, b.density.segments)
    ]
    deviation = [
        None if (sa.norm is None or sb.norm is None) else float(sb.norm) - float(sa.norm)
        for sa, sb in zip(a.deviation.segments, b.deviation.segments)
    ]
    distance = _measure([])  # (no points: the paths stay, null)
    pa, pb = a.distance.points, b.distance.points
    if len(pa) == len(pb) and pa:  # the same points (same probes), so distances pair up
        distance = _measure([
            None if (x.distance is None or y.distance is None) else float(y.distance) - float(x.distance)
            for x, y in zip(pa, pb)
        ])
    return Paired(density=_measure(density), deviation=_measure(deviation), distance=distance)
