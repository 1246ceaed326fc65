"""Exact numbers for gates: a metric as the JSON shows it against a bound as the user typed it.

Both become exact rationals (a float as its shortest decimal, text as written), so a value equal
to a threshold really is equal; `format_number` prints a value short, yet never hiding a difference.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

from regionaudit.errors import GateError

OPERATORS = ("<", "<=", ">", ">=", "==", "!=")


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
