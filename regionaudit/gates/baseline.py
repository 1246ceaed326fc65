"""Baselines: `--baseline OLD.json` and `--max-increase PATH=BOUND`.

A baseline is the JSON of an earlier audit. Its settings are reused for every probe option not
given on the command line (so the new audit measures the same probes); an explicit option that
conflicts with them is a usage error (exit 2). `--max-increase density.summary.median=10%` fails
the gate when the metric grew by more than 10% of the baseline's value; `...=5` by more than 5.

Pure functions on plain dicts; the CLI turns failed gates into exit code 1 and errors into 2.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from regionaudit.errors import BadOption, GateError
from regionaudit.files import sha256_of
from regionaudit.gates.catalogue import (absent_class, check_paths, gateable_paths, lookup, names_a_node,
                                         require_gateable, unknown_path_error, unmeasured_node, why_undefined)
from regionaudit.gates.numbers import exact, format_number
from regionaudit.options import Options, file_option_names, null_means_no_effect, option_flag, probe_option_names
from regionaudit.result import SCHEMA, GateResult, definition_changes, load_result

# Options that define the probes (and so every number): what a baseline run passes on, and the
# recorded settings a baseline is checked against: those options and the probe files' hashes.
PROBE_OPTIONS = probe_option_names()
PROBE_SETTINGS = PROBE_OPTIONS + tuple(f"{key}_sha256" for key in file_option_names())


def load_baseline(path: str | Path) -> dict:
    """The dict of an earlier single-model audit's JSON; a missing, unreadable or foreign file -> GateError."""
    d = load_result(path, what="baseline", allow_compare=False)
    if not isinstance(d.get("settings"), dict):
        raise GateError(f"baseline {path} has no settings object")
    return d


def baseline_settings(baseline: dict) -> dict:
    """The baseline's `settings` (a copy): what a run without explicit options should reuse.

    All of them are returned; `merge_settings` picks the keys the caller names (see PROBE_SETTINGS).
    """
    settings = baseline.get("settings")
    if not isinstance(settings, dict):
        raise GateError("the baseline has no settings object")
    return json.loads(json.dumps(settings))  # a deep copy of plain JSON data


def _normal(v: Any) -> Any:
    """Values as JSON would hold them: tuples become lists, 2.0 equals 2."""
    if isinstance(v, tuple):
        return [_normal(x) for x in v]
    if isinstance(v, list):
        return [_normal(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _normal(x) for k, x in v.items()}
    return v


def _same(a: Any, b: Any) -> bool:
    a, b = _normal(a), _normal(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def option_name(key: str) -> str:
    """The command-line option of a setting; a file's hash is checked through its file option."""
    file = key.removesuffix("_sha256")
    return option_flag(file if file in file_option_names() else key)


def _show(v: Any) -> str:
    if v is None:
        return "(not set)"
    if isinstance(v, (list, tuple)):
        return ",".join(_show(x) for x in v)
    if isinstance(v, float):
        return format_number(v)
    if isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v):
        return f"sha256 {v[:12]}…"
    return str(v)


def _conflict(key: str, given: Any, base: Any) -> str:
    """e.g. "--seed 1 conflicts with the baseline's seed 0"; a switch as it is typed: "--no-slice
    conflicts with the baseline's slice (on)"."""
    if isinstance(given, bool):
        flag = option_flag(key) if given else f"--no-{key.replace('_', '-')}"
        return f"{flag} conflicts with the baseline's {key} ({'on' if base else 'off'})"
    return f"{option_name(key)} {_show(given)} conflicts with the baseline's {key} {_show(base)}"


def merge_settings(explicit: dict, baseline: dict, keys: list[str]) -> dict:
    """Settings for a run against a baseline.

    `explicit` holds the command line's values, None for "not given". For each key in `keys`: a
    given value that differs from the baseline's is a conflict (BadOption naming both), but where
    the baseline recorded null because the option changed nothing there (`null_means_no_effect`:
    a loop option without loops, --pairs beside --segments) any value agrees; a value not given
    takes the baseline's. Keys the baseline lacks keep the explicit value. Other keys of
    `explicit` pass through. All conflicts are reported at once, on one line.
    """
    merged = dict(explicit)
    conflicts: list[str] = []
    for key in keys:
        given = explicit.get(key)
        if key not in baseline:
            merged[key] = given
            continue
        base = baseline[key]
        if given is None:
            merged[key] = base
        elif (base is None and null_means_no_effect(key)) or _same(given, base):
            merged[key] = given
        else:
            conflicts.append(_conflict(key, given, base))
    if conflicts:
        raise BadOption(
            "; ".join(conflicts)
            + " (leave the option out to reuse the baseline's value, or make a new baseline)"
        )
    return merged


def apply_baseline(opts: Options, baseline: dict) -> Options:
    """`opts` with every probe option not given taken from the baseline's settings, and the
    baseline's probe files; an explicit option or file that conflicts with them -> BadOption."""
    base = baseline_settings(baseline)
    explicit = {k: (getattr(opts, k) if k in opts.given else None) for k in PROBE_OPTIONS}
    chose = baseline.get("distance", {}).get("method") if isinstance(baseline.get("distance"), dict) else None
    if base.get("distance") == "auto" and explicit.get("distance") == chose:
        base["distance"] = chose  # what auto chose for the model's input size: the same measurement
    merged = merge_settings(explicit, base, list(PROBE_OPTIONS))
    values = {k: merged.get(k) for k in PROBE_OPTIONS}
    for key in ("input_shape", "slice_box"):  # JSON holds them as lists
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    for key in file_option_names():
        recorded, digest, given = base.get(key), base.get(f"{key}_sha256"), getattr(opts, key)
        flag = option_flag(key)
        if given is not None:
            if digest is not None and sha256_of(given, key) != digest:
                raise BadOption(f"{flag} {given} differs from the baseline's {key} file (sha256 {digest[:12]}…)")
            if digest is None and recorded is None:
                raise BadOption(f"{flag} was given but the baseline was measured without one")
        elif recorded is not None:
            if not Path(recorded).is_file() or sha256_of(recorded) != digest:
                raise BadOption(f"the baseline was measured on {flag} {recorded}; pass the same file with {flag}")
            values[key] = recorded
    filled = {k: v for k, v in values.items() if v is not None}
    try:
        return opts.with_values(**filled, given=opts.given | set(filled))
    except BadOption as exc:  # (the options given were checked already: a baseline's value)
        raise BadOption(f"the baseline's settings do not hold valid options: {exc}") from None


def check_baseline_model(baseline: dict, input_shape, model: str) -> None:
    """A baseline of a model that takes other inputs measured other probes, so no number of it
    compares with this run's: GateError. A flat model and an image model of as many values read
    the same points row-major (as in `compare`), so they may stand for each other."""
    audited = baseline.get("model") or {}
    recorded = audited.get("input_shape")
    if not isinstance(recorded, list) or not all(isinstance(d, int) for d in recorded):
        return  # (an old or hand-made baseline that does not say)
    before, now = tuple(recorded), tuple(input_shape)
    if before == now or (math.prod(before) == math.prod(now) and 1 in (len(before), len(now))):
        return
    raise GateError(
        f"the baseline audited a model that takes inputs of shape {before} "
        f"({audited.get('path')}), but {model} takes {now}: its probes cannot be measured "
        "again on this model; make a new baseline"
    )


# ---------------------------------------------------------------- --max-increase


@dataclass(frozen=True)
class IncreaseBound:
    """`PATH=10%` (relative to the baseline's value) or `PATH=5` (absolute, in the metric's units)."""

    path: str
    amount: str  # the bound as typed, without the %
    percent: bool

    @property
    def text(self) -> str:
        return f"{self.amount}%" if self.percent else self.amount

    @property
    def expr(self) -> str:
        return f"{self.path} increase <= {self.text}"


_NUMBER = r"[+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
# the path is all before the `=` whose amount ends the spec: a node's name may hold spaces and
# operators (`names_a_node`); any other path holds none
_INCREASE_RE = re.compile(r"^\s*(?P<path>.+?)\s*=\s*(?P<amount>" + _NUMBER + r")\s*(?P<pct>%?)\s*$", re.DOTALL)
_EXPECTED = "expected PATH=NUMBER or PATH=NUMBER%, e.g. density.summary.median=10%"


def parse_increase(spec: str) -> IncreaseBound:
    """`"density.summary.median=10%"` or `"deviation.summary.p90=12.5"` -> IncreaseBound."""
    if not isinstance(spec, str):
        raise GateError(f"bad --max-increase {spec!r}: {_EXPECTED}")
    m = _INCREASE_RE.match(spec)
    if m and not names_a_node(m.group("path")) and re.search(r"[\s=<>!]", m.group("path")):
        m = None
    if not m:
        if re.match(r"^\s*[^\s=]+\s*=\s*-", spec or ""):
            raise GateError(f"bad --max-increase {spec.strip()!r}: the bound is a maximum increase and must be >= 0")
        raise GateError(f"bad --max-increase {spec.strip()!r}: {_EXPECTED}")
    amount = m.group("amount").lstrip("+")
    if not math.isfinite(float(amount)):
        raise GateError(f"bad --max-increase {spec.strip()!r}: {amount} is not a finite number")
    return IncreaseBound(path=m.group("path"), amount=amount, percent=bool(m.group("pct")))


def check_increases(specs: list[str], baseline: dict | None = None) -> list[IncreaseBound]:
    """Parse every `--max-increase` and check it against the schema and the baseline before auditing,
    so a bound that can never be evaluated is a usage error, not a failure after minutes of work."""
    bounds = [parse_increase(s) for s in specs]
    check_paths([b.path for b in bounds], compare=False)
    if bounds and baseline is None:
        raise GateError("--max-increase needs --baseline OLD.json")
    for bound in bounds:
        _check_baseline_value(baseline, bound)
    return bounds


def _check_baseline_value(baseline: dict, bound: IncreaseBound) -> None:
    base_schema = baseline.get("schema")
    changed = definition_changes(bound.path, base_schema) if isinstance(base_schema, int) else []
    if changed:
        raise GateError(
            f"--max-increase {bound.path}: the baseline was written with schema {base_schema} and this regionaudit "
            f"writes schema {SCHEMA}; the metric's definition changed in schema {', '.join(map(str, changed))}, "
            "so the two values do not measure the same thing; make a new baseline"
        )
    base_paths = gateable_paths(baseline)
    if bound.path not in base_paths and not absent_class(baseline, bound.path) and not unmeasured_node(baseline, bound.path):
        raise GateError(f"the baseline has no metric {bound.path!r}: {_why_missing(baseline, bound.path, base_paths)}")
    try:
        base = lookup(baseline, bound.path)
    except GateError as exc:
        raise GateError(f"the baseline's {exc}") from None
    if bound.percent and base is not None and exact(base) <= 0:
        raise GateError(
            f"--max-increase {bound.path}={bound.text}: a percentage bound needs a positive baseline value, "
            f"but the baseline's {bound.path} is {format_number(base)}; give an absolute bound instead"
        )


def _why_missing(baseline: dict, path: str, base_paths: list[str]) -> str:
    """Why a baseline lacks a path: the run that wrote it did not measure that part (it names the
    option), or another version wrote it, or the path is misspelt (the closest it has)."""
    if path.startswith("slice.") and baseline.get("slice") is None:
        if (baseline.get("settings") or {}).get("slice") is False:
            return "the run that wrote it did not measure it (--no-slice); make a new baseline that does"
        return "its run skipped the 2-D slice (its notes say why); make a new baseline that measures it"
    if any(path.startswith(p) for p in ("reference.", "slice.", "density.", "deviation.", "distance.", "capacity.", "model.")) \
            and baseline.get("schema") != SCHEMA:
        return f"it was written by regionaudit {baseline.get('regionaudit')!r} (schema {baseline.get('schema')}); make a new baseline"
    return str(unknown_path_error(path, base_paths, "`regionaudit metrics BASELINE.json` lists all {n}")).split("; ", 1)[1]


def _percent_text(increase: Fraction, base: Fraction) -> str:
    pct = float(increase / base * 100)
    if pct != 0 and abs(pct) < 0.1:
        return f"{pct:+.2g}%"
    return f"{pct:+.1f}%"


def evaluate_increase(current: dict, baseline: dict, bound: IncreaseBound) -> GateResult:
    """One `--max-increase` gate: fails when current - baseline exceeds the bound.

    GateResult.value is the increase (current - baseline); None when either value is undefined.
    """
    _check_baseline_value(baseline, bound)
    cur = lookup(current, bound.path)
    base = lookup(baseline, bound.path)
    expr = bound.expr
    if cur is None or base is None:
        which = []
        if cur is None:
            why = why_undefined(current, bound.path)
            which.append("now" + (f" ({why})" if why else ""))
        if base is None:
            why = why_undefined(baseline, bound.path)
            which.append("in the baseline" + (f" ({why})" if why else ""))
        msg = f"FAIL {expr}: metric {bound.path} is undefined (null) {' and '.join(which)}"
        return GateResult(expr=expr, value=None, passed=False, message=msg)
    c, b = exact(cur), exact(base)
    increase = c - b
    if bound.percent:
        limit = exact(bound.amount) / 100 * b
        detail = f"of baseline {format_number(base)} (now {format_number(cur)}, {_percent_text(increase, b)})"
    else:
        limit = exact(bound.amount)
        detail = f"(baseline {format_number(base)}, now {format_number(cur)}, {_signed(increase)})"
    failed = increase > limit
    status = "FAIL" if failed else "pass"
    inc_value = float(increase) if isinstance(cur, float) or isinstance(base, float) else int(increase)
    return GateResult(expr=expr, value=inc_value, passed=not failed, message=f"{status} {expr} {detail}")


def _signed(x: Fraction) -> str:
    v = float(x) if x.denominator != 1 else int(x)
    s = format_number(v)
    return s if s.startswith("-") else "+" + s


def evaluate_increases(current: dict, baseline: dict, specs: list[str | IncreaseBound]) -> list[GateResult]:
    """Evaluate every `--max-increase`; all specs and paths are checked before any gate is evaluated."""
    bounds = [s if isinstance(s, IncreaseBound) else parse_increase(s) for s in specs]
    valid = gateable_paths(current)
    for bound in bounds:
        require_gateable(current, bound.path, valid)
    return [evaluate_increase(current, baseline, bound) for bound in bounds]
