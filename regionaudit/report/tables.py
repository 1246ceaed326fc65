"""The report's tables: distributions, model nodes, translation loops, gates and timings.

Split from `context.py` so that module reads as the report's sentences and plots; these
functions only lay numbers out in rows (formatted, `None`-safe) for the templates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from regionaudit.gates import format_number
from regionaudit.report import formatting as F
from regionaudit.result import AuditResult

# `kind` of the IR nodes that put kinks into the function (regionaudit/ir.py: `LeakyRelu`, which
# also covers ReLU, PReLU and Abs; `Clip`; `MaxPool` and `WindowMax`); their rows are highlighted
# in the node table.
KINK_KINDS = {"relu", "clip", "maxpool", "max"}


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    numeric: list[bool] = field(default_factory=list)  # right-align these columns
    highlight: list[bool] = field(default_factory=list)  # per row
    more: int = 0  # rows left out


def distribution_table(result: AuditResult) -> Table:
    d, v, dist = result.density, result.deviation, result.distance
    rows_src = [
        ("Regions per segment", d.summary),
        ("Regions per unit length", d.per_length),
        ("Regions per neuron", d.regions_per_neuron),
        ("Absolute deviation (L2 over outputs)", v.summary),
        ("Boundary distance", dist.summary),
        ("Boundary distance × neurons", dist.scaled_summary),
    ]
    if d.paths or d.path_summary:
        rows_src.append(("Regions per loop", d.path_summary))
    if v.paths or v.path_summary:
        rows_src.append(("Absolute deviation per loop", v.path_summary))
    keys = ["count", "mean", "median", "p10", "p90", "min", "max"]
    rows = []
    for label, summary in rows_src:
        if summary is None:
            rows.append([label, "0"] + ["undefined"] + [""] * (len(keys) - 2))
        else:
            rows.append([label, F.count(summary.get("count"))] + [F.num(summary.get(k)) for k in keys[1:]])
    return Table(["Measure"] + keys, rows, numeric=[False] + [True] * len(keys))


def node_table(result: AuditResult, limit: int = 400) -> Table:
    """One row per record of `regionaudit.importer.api.node_records`, kink nodes highlighted."""
    rows, highlight = [], []
    for i, rec in enumerate(result.model.nodes[:limit]):
        kind = str(rec.get("kind") or "")
        rows.append(
            [
                str(rec.get("id", i)),
                kind,
                str(rec.get("name") or ""),
                str(rec.get("op_type") or ""),
                F.shape(rec.get("shape")),
                F.count(rec.get("units") or 0),
                F.count(rec.get("params") or 0),
                str(rec.get("detail") or ""),
            ]
        )
        highlight.append(kind in KINK_KINDS)
    return Table(
        ["id", "kind", "ONNX name", "op type", "shape", "units", "params", "detail"],
        rows,
        numeric=[True, False, False, False, False, True, True, False],
        highlight=highlight,
        more=max(0, len(result.model.nodes) - limit),
    )


def paths_table(result: AuditResult, limit: int = 100) -> Table | None:
    d, v = result.density, result.deviation
    if not d.paths:
        return None
    rows = []
    for i, p in enumerate(d.paths[:limit]):
        dev = v.paths[i].norm if i < len(v.paths) else None
        rows.append(
            [str(i), F.count(p.edges), F.count(p.regions), F.num(p.length), F.num(p.density), F.num(dev), "yes" if p.truncated else ""]
        )
    return Table(
        ["loop", "edges", "regions", "length", "regions / length", "abs. deviation", "truncated"],
        rows,
        numeric=[True, True, True, True, True, True, False],
        more=max(0, len(d.paths) - limit),
    )


def gates_table(gates) -> Table | None:
    if not gates:
        return None
    # the exact value compared, as the gate line on stderr shows it: a failure must show why
    rows = [[g.expr, format_number(g.value) if g.value is not None else "undefined", "pass" if g.passed else "FAIL", g.message or ""] for g in gates]
    return Table(
        ["gate", "value", "result", "message"],
        rows,
        numeric=[False, True, False, False],
        highlight=[not g.passed for g in gates],
    )


def _timing_label(key: str) -> str:
    return key[:-2] if key.endswith("_s") else key


def timing_rows(timing: dict) -> list[tuple[str, str]]:
    rows = []
    for k, val in (timing or {}).items():
        if isinstance(val, dict):
            for k2, v2 in val.items():
                rows.append((f"{k}.{k2}", F.seconds(v2)))
        else:
            rows.append((_timing_label(str(k)), F.seconds(val)))
    return rows
