"""Number and text formatting shared by the HTML, PDF and Markdown outputs.

Every function accepts `None` (an undefined metric) and returns a printable string for it.
"""

from __future__ import annotations

import json
import math
import re

DASH = "—"


SIGNIFICANT = 4  # every number in the report and card has this many significant digits


def num(x, digits: int = SIGNIFICANT) -> str:
    """A number for people: ints with separators, floats with `digits` significant digits."""
    if x is None:
        return DASH
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(x):
        return DASH
    if x == 0:
        return "0"
    if x.is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    ax = abs(x)
    if ax >= 1e6 or ax < 1e-3:
        mantissa, exp = f"{x:.{digits - 1}e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exp)}"
    text = f"{x:.{digits}g}"
    if "e" in text:  # e.g. 12345.6 with 4 digits
        return f"{x:,.0f}"
    if ax >= 1000:
        return f"{x:,.{max(0, digits - len(str(int(ax))))}f}"
    return text


def count(x) -> str:
    """An integer count with thousands separators."""
    if x is None:
        return DASH
    try:
        return f"{int(x):,}"
    except (TypeError, ValueError):
        return str(x)


def counted(n: int, noun: str) -> str:
    """`n` and the noun, plural unless n is 1: "1 region", "22,497 regions"."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def big(x) -> str:
    """Large counts in short form (1.2 M, 3.4 G) for headline cards."""
    if x is None:
        return DASH
    x = float(x)
    for limit, unit, suffix in ((1e12, 1e12, " T"), (1e9, 1e9, " G"), (1e6, 1e6, " M"), (1e4, 1e3, " k")):
        if abs(x) >= limit:
            return f"{x / unit:.3g}{suffix}"
    return count(x)


def percent(x) -> str:
    """A fraction as a percentage in the one number format (1/8 is 12.5 %, not a rounded 12 %)."""
    if x is None:
        return DASH
    shown = num(100 * float(x))
    if shown in ("0", "100") and 0 < float(x) < 1:  # (a share that is neither none nor all does not read as one)
        return "<0.01%" if shown == "0" else ">99.99%"
    return f"{shown}%"


def seconds(x) -> str:
    if x is None:
        return DASH
    if isinstance(x, (int, float)):
        x = float(x)
        if x < 1:
            return f"{x * 1000:.0f} ms"
        if x < 120:
            return f"{x:.2f} s"
        return f"{int(x // 60)} min {x % 60:.0f} s"
    return str(x)


def shape(s) -> str:
    if s is None:
        return DASH
    if isinstance(s, (list, tuple)):
        return "×".join(str(v) for v in s) if s else "scalar"
    return str(s)


def value(v) -> str:
    """Any settings/validation value: numbers formatted, lists and dicts as compact JSON."""
    if v is None:
        return DASH
    if isinstance(v, (bool, int, float)):
        return num(v)
    if isinstance(v, str):
        return v
    try:
        return json.dumps(v, separators=(", ", ": "), default=str)
    except (TypeError, ValueError):
        return str(v)


def short_hash(h: str | None, n: int = 12) -> str:
    if not h:
        return DASH
    return str(h)[:n]


def spread(summary: dict | None, fmt=num) -> str:
    """"p10 …, p90 …" of a summary, or "" when undefined: sentences and the card add it after a median."""
    if not summary or summary.get("p10") is None:
        return ""
    return f"p10 {fmt(summary.get('p10'))}, p90 {fmt(summary.get('p90'))}"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~<>])")  # `(`, `!` are harmless once `[` `]` are escaped


ZWSP = "\u200b"  # zero-width space: breaks a URL for autolinkers, invisible to readers


def markdown(s) -> str:
    """Neutralise a string for a Markdown table cell or paragraph, with Markdown's own means.

    Markdown punctuation, `<` and `>` are backslash-escaped (no raw HTML, no autolink), an `&` that
    could start an entity gets a backslash too, newlines become spaces (no broken table rows), and
    bare URLs are broken with a literal zero-width space so that no renderer turns them into links.
    No HTML entities: the text reads the same in the Markdown source and rendered.
    """
    s = str(s)
    s = re.sub(r"[\r\n\t\v\f\u2028\u2029]+", " ", s)
    s = _MD_SPECIAL.sub(r"\\\1", s)
    s = re.sub(r"&(?=#?\w+;)", r"\\&", s)
    s = re.sub(r"^(\s*)([#+=-])(?=[\s#=-]|$)", r"\1\\\2", s)  # no heading, list or setext line at the start
    s = re.sub(r"^(\s*\d+)([.)])(?=\s|$)", r"\1\\\2", s)  # no ordered list
    s = re.sub(r"(?i)(\w)(://)", "\\1:" + ZWSP + "//", s)
    s = re.sub(r"(?i)\bwww\.", "www" + ZWSP + ".", s)
    return s


def approx_words(dist) -> str:
    """', approximate: …' to follow a boundary-distance sentence when the distances are estimates."""
    if getattr(dist, "method", "exact") != "approx":
        return ""
    return f", approximate: {dist.directions} Gaussian projections, ±{100 * dist.relative_error:.0f} % (3σ) per unit"
