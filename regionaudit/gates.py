"""Threshold gates on a result's JSON: `--fail-if "PATH OP NUMBER"`.

Everything here is a small pure function on the plain dict written by `--json`
(`AuditResult.to_dict()` or `CompareResult.to_dict()`); the CLI turns the `GateResult`s into an
exit code (1 when any gate failed) and bad expressions or paths (`GateError`) into exit code 2.

A gate *fails* when its expression holds: `--fail-if "density.summary.median > 200"` fails for a
median of 231 and passes for 200 or 37. A gate on an undefined (`null`) metric fails and says why.

Numbers are compared exactly as written: the metric as its shortest decimal (what the JSON shows)
against the threshold as typed, both as exact rationals, so a value equal to the threshold is equal.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from regionaudit.errors import GateError
from regionaudit.result import GateResult

OPERATORS = ("<", "<=", ">", ">=", "==", "!=")

SUMMARY_KEYS = ("count", "mean", "median", "p10", "p90", "min", "max")

# Summary fields of an audit JSON (relative to the audit's root), listed as gateable even when null.
AUDIT_SUMMARIES = (
    "density.summary",
    "density.per_length",
    "density.regions_per_neuron",
    "density.path_summary",
    "deviation.summary",
    "deviation.path_summary",
    "distance.summary",
    "distance.scaled_summary",
    "slice.area",
)
# Summary fields of a compare JSON (besides those of its two audits under `a.` and `b.`).
PAIRED_SUMMARIES = ("paired.density.summary", "paired.deviation.summary")

# Top-level keys that hold no metrics: how the run was configured, and bookkeeping.
_NOT_METRICS = frozenset({"settings", "schema", "regionaudit", "gates", "notes"})

_EXPECTED = "expected PATH OP NUMBER with OP one of < <= > >= == !=, e.g. \"density.summary.median > 200\""

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_GATE_RE = re.compile(
    r"^\s*(?P<path>[^\s<>=!]+)\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<number>" + _NUMBER + r")\s*$"
)
_PATH_RE = re.compile(r"^[A-Za-z_][\w\-/:]*(?:\.[^\s.<>=!]+)*$")


@dataclass(frozen=True)
class Gate:
    """One parsed `--fail-if` expression."""

    path: str
    op: str
    number: str  # the threshold as typed, e.g. "1e-4"

    @property
    def threshold(self) -> float:
        return float(self.number)

    @property
    def expr(self) -> str:
        return f"{self.path} {self.op} {self.number}"

    def holds(self, value: float | int) -> bool:
        """Whether `value OP threshold` is true (i.e. whether this fail-if gate fails)."""
        return compare(value, self.op, self.number)


def parse_gate(expr: str) -> Gate:
    """`"PATH OP NUMBER"` -> Gate; whitespace around OP is optional. Malformed -> GateError."""
    if not isinstance(expr, str):
        raise GateError(f"bad gate {expr!r}: {_EXPECTED}")
    m = _GATE_RE.match(expr)
    if not m:
        raise GateError(f"bad gate {expr.strip()!r}: {_EXPECTED}")
    path = m.group("path")
    if not _PATH_RE.match(path) or ".." in path:
        raise GateError(f"bad gate {expr.strip()!r}: {path!r} is not a dotted metric path; {_EXPECTED}")
    number = m.group("number")
    if not math.isfinite(float(number)):
        raise GateError(f"bad gate {expr.strip()!r}: threshold {number} is not a finite number")
    return Gate(path=path, op=m.group("op"), number=number)


def exact(x: float | int | str) -> Fraction:
    """An exact rational for a number: ints exactly, floats as their shortest decimal, text as written."""
    if isinstance(x, bool):
        raise TypeError("booleans are not metrics")
    if isinstance(x, int):
        return Fraction(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            raise ValueError(f"{x} is not finite")
        return Fraction(Decimal(repr(x)))
    return Fraction(Decimal(x.strip()))


def compare(value: float | int, op: str, number: float | int | str) -> bool:
    """`value OP number`, exactly (see the module docstring)."""
    a, b = exact(value), exact(number)
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    if op == ">=":
        return a >= b
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    raise GateError(f"unknown operator {op!r}; use one of {' '.join(OPERATORS)}")


def format_number(x: float | int | None) -> str:
    """Short, yet never hiding a difference: 37 for 37.0, 0.1234 for 0.1234, full repr otherwise."""
    if x is None:
        return "null"
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return str(x)
    if not math.isfinite(x):
        return str(x)
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    short = format(x, ".6g")
    return short if float(short) == x else repr(x)


# ---------------------------------------------------------------- paths


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _walk(node: Any, prefix: str, out: list[str]) -> None:
    """Dotted paths to numbers and nulls below `node`; lists (per-item data) are left out."""
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict):
                _walk(value, path, out)
            elif value is None or _is_number(value):
                out.append(path)
            # lists, strings and booleans hold no gateable metric


def _walk_audit(audit: dict, prefix: str, out: list[str]) -> None:
    for key, value in audit.items():
        if key in _NOT_METRICS or (key == "slice" and value is None):
            continue  # a null slice means "not computed", not an undefined metric
        _walk({key: value}, prefix, out)


def _audit_roots(result: dict) -> list[str]:
    """Prefixes of the audits inside a result: "" for an audit, "a." and "b." for a compare."""
    if "paired" in result and isinstance(result.get("a"), dict) and isinstance(result.get("b"), dict):
        return ["a.", "b."]
    return [""]


def _known_summaries(result: dict) -> list[str]:
    roots = _audit_roots(result)
    known = [root + s for root in roots for s in AUDIT_SUMMARIES]
    if roots != [""]:
        known += list(PAIRED_SUMMARIES)
    return known


def schema_skeleton(compare: bool = False) -> dict:
    """An empty result dict with every schema field: what `gateable_paths(None)` lists.

    Per-model extras (`density.knots_per_layer.<node>`, `timing.<stage>`) appear only in real results.
    """
    from regionaudit.result import (
        AuditResult,
        CompareResult,
        Density,
        Deviation,
        Distance,
        ModelInfo,
        Paired,
        PairedMeasure,
    )

    model = ModelInfo(
        path="", sha256="", input_shape=[], output_shape=[], neurons=0, maxpool_windows=0, params=0, macs=0,
        opset=0, producer="", input_name="", output_name="",
        validation={"max_abs_err": None, "max_rel_err": None},
    )
    from regionaudit.slice_result import empty_slice

    audit = AuditResult(
        model=model, settings={}, density=Density(), deviation=Deviation(), distance=Distance(), slice=empty_slice()
    )
    if not compare:
        return audit.to_dict()
    empty = PairedMeasure(differences=[], fraction_positive=None, summary=None)
    return CompareResult(a=audit, b=audit, paired=Paired(density=empty, deviation=empty)).to_dict()


def gateable_paths(result: dict | None) -> list[str]:
    """Every dotted path to a number or null in a result dict, in JSON order.

    Left out: per-item lists (segments, paths, points, nodes, differences, shapes), strings,
    booleans, and the configuration/bookkeeping keys (`settings`, `schema`, `regionaudit`, `gates`,
    `notes`). Summaries are listed with their keys (count, mean, median, p10, p90, min, max) even
    when the summary is null, e.g. `density.summary.median` with no segments. With `result=None`,
    the paths every audit JSON has (see `schema_skeleton`).
    """
    if result is None:
        result = schema_skeleton()
    if not isinstance(result, dict):
        raise GateError("gates need a result JSON object (a dict)")
    out: list[str] = []
    roots = _audit_roots(result)
    if roots == [""]:
        _walk_audit(result, "", out)
    else:
        for key, value in result.items():
            if key in ("a", "b"):
                _walk_audit(value, key, out)
            elif key not in _NOT_METRICS:
                _walk({key: value}, "", out)
    # summaries that are null (or lack keys) still name their schema keys, in place of the summary
    expanded: list[str] = []
    known = _known_summaries(result)
    for p in out:
        if p in known:
            expanded += [f"{p}.{k}" for k in SUMMARY_KEYS]
        else:
            expanded.append(p)
    seen = set(expanded)
    for summary in known:
        parent = summary.rsplit(".", 1)[0]
        node = _resolve(result, parent, missing=_MISSING)
        if node is _MISSING or (node is None and parent.endswith("slice")):
            continue  # absent from the schema, or a slice that was not computed  # this part of the schema is absent altogether (e.g. an old or partial JSON)
        missing = [f"{summary}.{k}" for k in SUMMARY_KEYS if f"{summary}.{k}" not in seen]
        if not missing:
            continue
        # after the summary's last listed sibling key, or at the end
        siblings = [i for i, q in enumerate(expanded) if q.startswith(summary + ".")]
        at = siblings[-1] + 1 if siblings else len(expanded)
        expanded[at:at] = missing
        seen.update(missing)
    out = expanded
    return out


_MISSING = object()


def _resolve(result: dict, path: str, missing: Any = None) -> Any:
    """Follow a dotted path; keys may themselves contain dots (e.g. ONNX node names).

    A null met on the way gives None (a metric of a null summary is undefined); a key that is not
    there gives `missing`.
    """
    node: Any = result
    rest = path
    while rest:
        if node is None:
            return None
        if not isinstance(node, dict):
            return missing
        if rest in node:
            return node[rest]
        match = None
        for key in node:
            k = str(key)
            if rest.startswith(k + ".") and (match is None or len(k) > len(str(match))):
                match = key
        if match is None:
            return missing
        node = node[match]
        rest = rest[len(str(match)) + 1 :]
    return node


def unknown_path_error(path: str, valid: list[str]) -> GateError:
    """The closest valid paths for a misspelt one; the full list only when it is short."""
    close = difflib.get_close_matches(path, valid, n=3, cutoff=0.6)
    if close:
        hint = f"did you mean {' or '.join(close)}?"
    elif len(valid) <= 8:
        hint = f"valid paths: {', '.join(valid)}"
    else:
        hint = f"valid paths include {', '.join(valid[:3])}"
    return GateError(f"unknown metric path {path!r}; {hint} (`regionaudit metrics` lists all {len(valid)})")


def lookup(result: dict, path: str) -> float | int | None:
    """The value at a gateable path (None when undefined); unknown path -> GateError listing valid ones."""
    valid = gateable_paths(result)
    if path not in valid:
        raise unknown_path_error(path, valid)
    value = _resolve(result, path)
    if value is None:
        return None
    if not _is_number(value):
        raise unknown_path_error(path, valid)
    if isinstance(value, float) and not math.isfinite(value):
        return None  # results never hold NaN, but a hand-edited JSON might
    return value


# ---------------------------------------------------------------- why a metric is undefined


def _count(result: dict, dotted: str) -> int | None:
    v = _resolve(result, dotted, missing=None)
    return len(v) if isinstance(v, list) else None


def why_undefined(result: dict, path: str) -> str:
    """A short reason why `path` is null in `result`, or "" when none is known."""
    root = ""
    rel = path
    for r in _audit_roots(result):
        if r and path.startswith(r):
            root, rel = r, path[len(r) :]
    neurons = _resolve(result, root + "model.neurons")
    segs = _count(result, root + "density.segments")
    dev_segs = _count(result, root + "deviation.segments")
    points = _count(result, root + "distance.points")
    paths = _count(result, root + "density.paths")
    reason = ""
    if rel.startswith("paired."):
        measure = rel.split(".")[1] if rel.count(".") >= 1 else "density"
        if _count(result, f"paired.{measure}.differences") == 0:
            reason = "no segments were compared"
    elif rel.startswith(("density.summary", "density.per_length", "density.regions_per_neuron")):
        if segs == 0:
            reason = "no segments were measured"
        elif rel.startswith("density.regions_per_neuron") and neurons == 0:
            reason = "the model has no ReLU-type units"
        elif rel.startswith("density.per_length"):
            reason = "no segment has a nonzero length"
    elif rel.startswith(("density.path_summary", "deviation.path_summary")):
        if paths == 0 or _count(result, root + "deviation.paths") == 0:
            reason = "no closed paths were measured (they are measured with --loops N)"
    elif rel.startswith("deviation.summary"):
        if dev_segs == 0:
            reason = "no segments were measured"
    elif rel == "deviation.spearman_density":
        if dev_segs is not None and dev_segs < 3:
            reason = f"Spearman correlation needs at least 3 segments, found {dev_segs}"
        else:
            reason = "Spearman correlation is undefined when density or deviation is constant across segments"
    elif rel.startswith(("distance.summary", "distance.scaled_summary")):
        if points == 0:
            reason = "no points were measured"
        elif neurons == 0:
            reason = "the model has no ReLU-type units"
        else:
            reason = "no point has a boundary within reach (no unit with a nonzero gradient)"
    # a note that names the metric says more than a guess
    notes: list[str] = []
    for key in (root + "notes", root + "model.notes"):
        v = _resolve(result, key)
        if isinstance(v, list):
            notes += [n for n in v if isinstance(n, str)]
    parent = rel.rsplit(".", 1)[0] if rel.count(".") >= 2 else rel
    for note in notes:
        if rel in note or parent in note:
            return note if not reason else f"{reason} ({note})"
    return reason


# ---------------------------------------------------------------- evaluation


def evaluate_gate(result: dict, gate: Gate) -> GateResult:
    value = lookup(result, gate.path)
    if value is None:
        why = why_undefined(result, gate.path)
        detail = f"metric {gate.path} is undefined (null)" + (f": {why}" if why else "")
        return GateResult(expr=gate.expr, value=None, passed=False, message=f"FAIL {gate.expr}: {detail}")
    failed = gate.holds(value)
    status = "FAIL" if failed else "pass"
    return GateResult(
        expr=gate.expr,
        value=value,
        passed=not failed,
        message=f"{status} {gate.expr}: value {format_number(value)}",
    )


def evaluate_gates(result: dict, exprs: list[str]) -> list[GateResult]:
    """Evaluate `--fail-if` gates; every expression and path is checked before any is evaluated."""
    gates = [parse_gate(e) for e in exprs]
    valid = gateable_paths(result)
    for g in gates:
        if g.path not in valid:
            raise unknown_path_error(g.path, valid)
    return [evaluate_gate(result, g) for g in gates]


# Parts of a result whose keys depend on the model or run (node names, stages, future slices).
_OPEN_PREFIXES = (
    "density.knots_per_layer.",
    "timing.",
    "model.validation.",
    "slice.boundary_length_per_layer.",
    "slice.classes.",
    "slice.box.",
)
_PER_NODE = "density.knots_per_layer."
_SLICE_PER_NODE = "slice.boundary_length_per_layer."


def could_exist(path: str, compare: bool = False) -> bool:
    """Whether `path` can be a gateable path of some result of this kind (before the audit runs)."""
    if path in gateable_paths(schema_skeleton(compare)):
        return True
    roots = ("a.", "b.") if compare else ("",)
    prefixes = [r + p for r in roots for p in _OPEN_PREFIXES]
    if compare:
        prefixes.append("timing.")
    return any(path.startswith(p) and len(path) > len(p) for p in prefixes)


def check_paths(paths: list[str], compare: bool = False) -> None:
    """Fail fast, before a long audit: GateError for a path no result of this kind can have."""
    for path in paths:
        if not could_exist(path, compare):
            raise unknown_path_error(path, gateable_paths(schema_skeleton(compare)))


def check_node_paths(paths: list[str], kink_names: list[str]) -> None:
    """Once the model is imported its kink nodes are known: a per-layer path naming another node
    is a usage error before the analysis runs, not after it."""
    for prefix in (_PER_NODE, _SLICE_PER_NODE):
        valid = [prefix + name for name in kink_names]
        for path in paths:
            if path.startswith(prefix) and path not in valid:
                raise unknown_path_error(path, valid)


def check_gates(exprs: list[str], compare: bool = False) -> list[Gate]:
    """Parse every `--fail-if` and check its path against the schema; call before auditing."""
    gates = [parse_gate(e) for e in exprs]
    check_paths([g.path for g in gates], compare)
    return gates


def format_gate_line(g: GateResult) -> str:
    """One line per gate for stderr, e.g. "FAIL density.summary.median > 200: value 231"."""
    if g.message:
        return " ".join(g.message.split())
    status = "pass" if g.passed else "FAIL"
    return f"{status} {g.expr}: value {format_number(g.value)}"


def any_failed(gates: list[GateResult]) -> bool:
    """The exit-code decision (coverage's `should_fail_under`): True -> exit code 1."""
    return any(not g.passed for g in gates)
