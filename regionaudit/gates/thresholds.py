"""Threshold gates on a result's JSON: `--fail-if "PATH OP NUMBER"`.

Small pure functions on the plain dict written by `--json` (`AuditResult.to_dict()` or
`CompareResult.to_dict()`); the CLI turns the `GateResult`s into an exit code (1 when any gate
failed) and bad expressions or paths (`GateError`) into exit code 2.

A gate *fails* when its expression holds: `--fail-if "density.summary.median > 200"` fails for a
median of 231 and passes for 200 or 37. A gate on an undefined (`null`) metric fails and says why.
Numbers are compared exactly (`gates.numbers`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from regionaudit.errors import GateError
from regionaudit.gates.catalogue import (check_paths, gateable_paths, lookup, names_a_node, require_gateable,
                                         why_undefined)
from regionaudit.gates.numbers import compare, format_number
from regionaudit.result import GateResult

_EXPECTED = "expected PATH OP NUMBER with OP one of < <= > >= == !=, e.g. \"density.summary.median > 200\""

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
# the path is all before the last operator that a number ends: a node's name may hold spaces and
# operators (`names_a_node`); any other path is checked against `_PATH_RE`
_GATE_RE = re.compile(
    r"^\s*(?P<path>.+?)\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<number>" + _NUMBER + r")\s*$", re.DOTALL
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
    if not names_a_node(path) and (not _PATH_RE.match(path) or ".." in path):
        raise GateError(f"bad gate {expr.strip()!r}: {path!r} is not a dotted metric path; {_EXPECTED}")
    number = m.group("number")
    if not math.isfinite(float(number)):
        raise GateError(f"bad gate {expr.strip()!r}: threshold {number} is not a finite number")
    return Gate(path=path, op=m.group("op"), number=number)


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
        require_gateable(result, g.path, valid)
    return [evaluate_gate(result, g) for g in gates]



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
