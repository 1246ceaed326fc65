"""The report's tables: distributions, model nodes, translation loops, gates and timings.

Split from `context.py` so that module reads as the report's sentences and plots; these
functions only lay numbers out in rows (formatted, `None`-safe) for the templates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from regionaudit.gates.numbers import format_number
from regionaudit.metrics import METRICS, SUMMARY_KEYS, Metric
from regionaudit.report import formatting as show
from regionaudit.result import AuditResult

# `kind` of the IR nodes that put kinks into the function (regionaudit/ir/: `LeakyRelu`, which
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


def summary_of(result: AuditResult, path: str):
    """The value at a metric's path in the result (a summary dict, a number or None)."""
    node = result
    for key in path.split("."):
        node = node.get(key) if isinstance(node, dict) else getattr(node, key)
    return node


def shown_metrics(result: AuditResult) -> list[Metric]:
    """The catalogue's metrics this result has: loop metrics only when loops were measured, slice
    metrics only when the 2-D slice was."""
    loops = bool(result.density.paths or result.deviation.paths or result.density.path_summary)
    return [m for m in METRICS if (loops or not m.loops) and (result.slice is not None or not m.slice)]


def distribution_table(result: AuditResult) -> Table:
    keys = [k for k in SUMMARY_KEYS if not k.startswith("ci95")]  # the interval is one column
    rows = []
    for metric in shown_metrics(result):
        if not metric.summary:
            continue
        summary = summary_of(result, metric.path)
        if summary is None:
            rows.append([metric.label, "0"] + ["undefined"] + [""] * (len(keys) - 1))
        else:
            ci = "" if summary.get("ci95_low") is None else f"[{show.num(summary['ci95_low'])}, {show.num(summary['ci95_high'])}]"
            rows.append([metric.label, show.count(summary.get("count"))] + [show.num(summary.get(k)) for k in keys[1:3]]
                        + [ci] + [show.num(summary.get(k)) for k in keys[3:]])
    columns = ["Measure"] + keys[:3] + ["median 95 % CI"] + keys[3:]
    return Table(columns, rows, numeric=[False] + [True] * (len(columns) - 1))


def node_table(result: AuditResult, limit: int = 400) -> Table:
    """One row per record of `regionaudit.importer.pipeline.node_records`, kink nodes highlighted."""
    rows, highlight = [], []
    for i, rec in enumerate(result.model.nodes[:limit]):
        kind = str(rec.get("kind") or "")
        rows.append(
            [
                str(rec.get("id", i)),
                kind,
                str(rec.get("name") or ""),
                str(rec.get("op_type") or ""),
                show.shape(rec.get("shape")),
                show.count(rec.get("units") or 0),
                show.count(rec.get("params") or 0),
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
            [str(i), show.count(p.edges), show.count(p.regions), show.num(p.length), show.num(p.density), show.num(dev), "yes" if p.truncated else ""]
        )
    return Table(
        ["loop", "edges", "regions", "length", "regions / length", "abs. deviation", "truncated"],
        rows,
        numeric=[True, True, True, True, True, True, False],
        more=max(0, len(d.paths) - limit),
    )


def paired_paths_table(a: AuditResult, b: AuditResult, limit: int = 100) -> Table | None:
    """compare's loops: the same loops (same images, same shifts) through both models, side by side."""
    pa, pb = a.density.paths, b.density.paths
    if not pa or not pb:
        return None

    def dev(result: AuditResult, i: int):
        return result.deviation.paths[i].norm if i < len(result.deviation.paths) else None

    rows = []
    for i, (x, y) in enumerate(list(zip(pa, pb))[:limit]):
        diff = y.regions - x.regions
        rows.append([str(i), show.count(x.edges), show.count(x.regions), show.count(y.regions), ("+" if diff > 0 else "") + show.count(diff),
                     show.num(dev(a, i)), show.num(dev(b, i)), "yes" if x.truncated or y.truncated else ""])
    return Table(
        ["loop", "edges", "regions A", "regions B", "B − A", "abs. deviation A", "abs. deviation B", "truncated"],
        rows,
        numeric=[True] * 7 + [False],
        more=max(0, min(len(pa), len(pb)) - limit),
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
                rows.append((f"{k}.{k2}", show.seconds(v2)))
        else:
            rows.append((_timing_label(str(k)), show.seconds(val)))
    return rows
