"""The catalogue of gateable paths: which dotted paths of a result JSON hold a metric, the value
at a path, whether a path can exist before the audit runs, and why a value is undefined (null).

Gates (`thresholds`, `baseline`) and `regionaudit metrics` read paths only through here.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import replace
from typing import Any

from regionaudit.errors import GateError
from regionaudit.metrics import (METRICS, NO_POINTS, NO_SEGMENTS, PAIRED_METRICS, SUMMARY_KEYS, TIMING_STAGES, Counts,
                                  metric_at)
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
from regionaudit.slice_result import empty_slice

# Summary fields of an audit JSON (relative to the audit's root), listed as gateable even when null,
# and those of a compare JSON (besides those of its two audits under `a.` and `b.`).
AUDIT_SUMMARIES = tuple(m.path for m in METRICS if m.summary)
PAIRED_SUMMARIES = tuple(m.path for m in PAIRED_METRICS if m.summary)
# the same-class / different-class summaries (null where one side has no segment)
BY_CLASS_SUMMARIES = tuple(
    f"{measure}.by_class.{side}.{key}"
    for measure, keys in (("density", ("summary", "per_length")), ("deviation", ("summary",)))
    for side in ("same_class", "different_class")
    for key in keys
)

# Top-level keys that hold no metrics: how the run was configured, and bookkeeping.
_NOT_METRICS = frozenset({"settings", "schema", "regionaudit", "gates", "notes"})




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


# Parts that are null when not computed (not undefined metrics), and plot data that is no metric.
_NOT_COMPUTED = frozenset({"slice", "reference", "capacity"})
_PLOT_DATA = ("density.profile", "density.by_class.source", "deviation.by_class.source", "reference.init.profile",
              # per-item data, null where not kept (--keep-polygons), given (--slice-points) or known
              "slice.polygons", "slice.decision_segments", "slice.point_rows", "capacity.widths")
# Measured after the gates are evaluated (the report shows their results): no gate can read it.
_AFTER_GATES = "timing.report_s"


def _after_gates(path: str) -> bool:
    return path == _AFTER_GATES or path.endswith("." + _AFTER_GATES)


def _walk_audit(audit: dict, prefix: str, out: list[str]) -> None:
    for key, value in audit.items():
        if key in _NOT_METRICS or (key in _NOT_COMPUTED and value is None):
            continue  # a null slice means "not computed", not an undefined metric
        found: list[str] = []
        _walk({key: value}, prefix, found)
        skip = tuple(f"{prefix}.{p}" if prefix else p for p in _PLOT_DATA)
        out += [p for p in found if not (p in skip or p.startswith(tuple(s + "." for s in skip)))]


def _audit_roots(result: dict) -> list[str]:
    """Prefixes of the audits inside a result: "" for an audit, "a." and "b." for a compare."""
    if "paired" in result and isinstance(result.get("a"), dict) and isinstance(result.get("b"), dict):
        return ["a.", "b."]
    return [""]


def _summary() -> dict:
    return dict.fromkeys(SUMMARY_KEYS)


def _by_class(*keys: str) -> dict:
    """`density.by_class` / `deviation.by_class` (with --labels, or classes the model predicts)."""
    part = {k: None if k == "count" else _summary() for k in keys}
    return {"same_class": part, "different_class": dict(part)}


# parts of an audit that some runs leave out (--init-reference 0, a model no bound covers): their
# numbers, as the skeleton lists them
_CAPACITY = {"input_dimension": None, "log10_upper": None, "log10_lower": None,
             "line": {"dimension": None, "log10_upper": None, "log10_lower": None},
             "plane": {"dimension": None, "log10_upper": None, "log10_lower": None},
             "measured": dict.fromkeys(("regions_per_length_per_neuron", "max_segment_regions", "log10_max_segment_regions",
                                        "slice_regions", "slice_regions_per_area_per_neuron2"))}
_POOLED = {"density": {"summary": _summary(), "per_length": _summary(), "regions_per_neuron": _summary()},
           "deviation": {"summary": _summary()}, "distance": {"summary": _summary(), "scaled_summary": _summary()}}
_REFERENCE = {"init": {"copies": None, "segments": None, "points": None, "pooled": _POOLED}}
SPEARMAN_KEYS = ("rho", "p_value", "ci95_low", "ci95_high", "count")

# The init reference's pooled summaries (null where it measured no segment or point) and counts,
# as the skeleton holds them, and the parts that are null as a whole where their measure is
# undefined: each with the keys it has.
POOLED_SUMMARIES = tuple(f"reference.init.pooled.{m}.{k}" for m, part in _POOLED.items() for k in part)
INIT_COUNTS = tuple(k for k in _REFERENCE["init"] if k != "pooled")


def _known_summaries(result: dict) -> dict[str, tuple[str, ...]]:
    """Parts of the schema with fixed keys, which gates can name even where the part is null:
    each path with its keys."""
    known: dict[str, tuple[str, ...]] = {}
    for root in _audit_roots(result):
        known.update((root + s, SUMMARY_KEYS) for s in AUDIT_SUMMARIES + BY_CLASS_SUMMARIES + POOLED_SUMMARIES)
        known[root + "deviation.spearman"] = SPEARMAN_KEYS
        known[root + "reference.init"] = INIT_COUNTS
        known.update((f"{root}{m}.by_class.{side}", ("count",)) for m in ("density", "deviation")
                     for side in ("same_class", "different_class"))
    if _audit_roots(result) != [""]:
        known.update((s, SUMMARY_KEYS) for s in PAIRED_SUMMARIES)
    return known


def schema_skeleton(compare: bool = False) -> dict:
    """An empty result dict with every schema field: what `gateable_paths(None)` lists.

    Per-model extras (`density.knots_per_layer.<node>`, `timing.<stage>`) appear only in real results.
    """
    model = ModelInfo(
        path="", sha256="", input_shape=[], output_shape=[], neurons=0, maxpool_windows=0, params=0, macs=0,
        opset=0, producer="", input_name="", output_name="",
        validation={"max_abs_err": None, "max_rel_err": None, "samples": None},
    )
    audit = AuditResult(
        model=model, settings={}, density=Density(by_class=_by_class("count", "summary", "per_length")),
        deviation=Deviation(spearman=dict.fromkeys(SPEARMAN_KEYS),
                            by_class=_by_class("count", "summary")),
        distance=Distance(), capacity=_CAPACITY, reference=_REFERENCE, environment={"threads": None},
    )
    if not compare:  # an audit measures the 2-D slice by default; compare never does
        return replace(audit, slice=empty_slice()).to_dict()
    tests = dict.fromkeys(("wilcoxon_statistic", "wilcoxon_p_value", "sign_test_nonzero", "sign_test_positive",
                           "sign_test_p_value"))
    empty = PairedMeasure(differences=[], fraction_positive=None, summary=None, tests=tests)
    return CompareResult(a=audit, b=audit, paired=Paired(density=empty, deviation=empty, distance=empty)).to_dict()


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
    # summaries that are null (or lack keys) still name their schema keys, in place of the summary;
    # a null part holding such summaries is no metric itself
    expanded: list[str] = []
    known = _known_summaries(result)
    for p in out:
        if p in known:
            expanded += [f"{p}.{k}" for k in known[p]]
        elif not any(k.startswith(p + ".") for k in known):
            expanded.append(p)
    seen = set(expanded)
    for summary, keys in known.items():
        parent = summary.rsplit(".", 1)[0]
        node = _resolve(result, parent, missing=_MISSING)
        if node is _MISSING or (node is None and parent.endswith("slice")):
            continue  # absent from the schema (an old or partial JSON), or a slice that was not measured
        missing = [f"{summary}.{k}" for k in keys if f"{summary}.{k}" not in seen]
        if not missing:
            continue
        # after the summary's last listed sibling key, or at the end
        siblings = [i for i, q in enumerate(expanded) if q.startswith(summary + ".")]
        at = siblings[-1] + 1 if siblings else len(expanded)
        expanded[at:at] = missing
        seen.update(missing)
    # a comparison's audits measure no slice: what only a slice gives is never a number there
    return [p for p in expanded if not _after_gates(p) and not (roots != [""] and _other_command(p, True))]


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


def unknown_path_error(path: str, valid: list[str], listed_by: str = "`regionaudit metrics RESULT.json` lists all {n}") -> GateError:
    """The closest valid paths for a misspelt one; the full list only when it is short.
    `listed_by` names the command that lists `valid` ({n}: their number)."""
    close = difflib.get_close_matches(path, valid, n=3, cutoff=0.6)
    if close:
        hint = f"did you mean {' or '.join(close)}?"
    elif len(valid) <= 8:
        hint = f"valid paths: {', '.join(valid)}"
    else:
        hint = f"valid paths include {', '.join(valid[:3])}"
    if _after_gates(path):
        hint = "it is measured after the gates are evaluated, for the report that shows their results"
    return GateError(f"unknown metric path {path!r}; {hint} ({listed_by.format(n=len(valid))})")


def absent_class(result: dict, path: str) -> bool:
    """Whether `path` is `slice.classes.<k>` for a class k of the model (0 and 1 for a single
    output, whose sign is its class) that no region of the measured slice predicts: a count of
    0, which the JSON leaves out (it lists the classes present)."""
    for root in _audit_roots(result):
        prefix = root + "slice.classes."
        if not path.startswith(prefix):
            continue
        k = path[len(prefix) :]
        sl = _resolve(result, root + "slice")
        shape = _resolve(result, root + "model.output_shape")
        if not (isinstance(sl, dict) and isinstance(sl.get("classes"), dict)):
            return False
        if not (isinstance(shape, list) and all(isinstance(d, int) for d in shape)):
            return False
        return is_class(k, math.prod(shape)) and k not in sl["classes"]
    return False


def unmeasured_node(result: dict, path: str) -> bool:
    """Whether `path` is `density.knots_per_layer.<node>` for a node of the model in an audit
    that measured no segment: its per-layer counts are empty, so the count is undefined (null),
    as every density metric of that audit is."""
    for root in _audit_roots(result):
        name = path.removeprefix(root + _PER_NODE)
        if name == path:
            continue
        nodes = _resolve(result, root + "model.nodes")
        return (_count(result, root + "density.segments") == 0 and isinstance(nodes, list)
                and any(isinstance(n, dict) and n.get("name") == name for n in nodes))
    return False


def is_class(k: str, n_outputs: int) -> bool:
    """Whether `k`, as a path writes it, is a class the model predicts: 0 to n - 1, or 0 and 1 for
    a single output, whose sign is its class."""
    return k.isdigit() and k == str(int(k)) and int(k) < (2 if n_outputs == 1 else n_outputs)


def require_gateable(result: dict, path: str, valid: list[str]) -> None:
    """GateError (naming the closest of `valid`, the result's gateable paths) unless `path` is
    one of them, a slice class no region predicts (`absent_class`), or a node's knots where no
    segment was measured (`unmeasured_node`)."""
    if path not in valid and not absent_class(result, path) and not unmeasured_node(result, path):
        raise unknown_path_error(path, valid)


def lookup(result: dict, path: str) -> float | int | None:
    """The value at a gateable path (None when undefined); unknown path -> GateError listing valid ones."""
    valid = gateable_paths(result)
    require_gateable(result, path, valid)
    if path not in valid:  # (a class no slice region predicts, or a node's knots on no segment)
        return None if unmeasured_node(result, path) else 0
    value = _resolve(result, path)
    if value is None:
        return None
    if not _is_number(value):  # (a path of the schema whose value a hand-edited JSON replaced)
        raise GateError(f"{path} is {value!r}, not a number or null: the JSON was edited or damaged")
    if isinstance(value, float) and not math.isfinite(value):
        return None  # results never hold NaN, but a hand-edited JSON might
    return value


def _count(result: dict, dotted: str) -> int | None:
    v = _resolve(result, dotted, missing=None)
    return len(v) if isinstance(v, list) else None


def _count_defined(result: dict, dotted: str) -> int | None:
    """The entries of a list that are not null (a pair with a side cut short has no difference)."""
    v = _resolve(result, dotted, missing=None)
    return sum(x is not None for x in v) if isinstance(v, list) else None


def _init_copies(result: dict, root: str) -> int | None:
    """Re-initialised copies the audit measured: 0 where it measured none, None where unknown."""
    ref = _resolve(result, root + "reference", missing=_MISSING)
    if ref is _MISSING:
        return None
    copies = _resolve(result, root + "reference.init.copies")
    return copies if isinstance(copies, int) else 0


def why_undefined(result: dict, path: str) -> str:
    """A short reason why `path` is null in `result` (from the metric catalogue), or "" when none
    is known; a note of the audit that names the metric says more and is added."""
    root = ""
    rel = path
    for r in _audit_roots(result):
        if r and path.startswith(r):
            root, rel = r, path[len(r) :]
    metric = metric_at("deviation.spearman_density" if rel.startswith("deviation.spearman.") else rel)
    reason = ""
    if (".by_class." in rel or rel.startswith(_PER_NODE)) and _count(result, root + "density.segments") == 0:
        reason = NO_SEGMENTS
    if rel.startswith("reference."):
        ref = _resolve(result, root + "reference.init")
        if not isinstance(ref, dict):
            reason = "no initialisation reference was measured (--init-reference 0)"
        elif ref.get("segments") == 0 and not rel.startswith("reference.init.pooled.distance"):
            reason = NO_SEGMENTS
        elif ref.get("points") == 0 and rel.startswith("reference.init.pooled.distance"):
            reason = NO_POINTS
    for side in ("same_class", "different_class"):
        if f".by_class.{side}." in rel and _resolve(result, root + rel.split(".")[0] + f".by_class.{side}.count") == 0:
            reason = f"no {side.replace('_', '-')} segments were measured"
    if metric is not None:
        measure = rel.split(".")[1] if rel.startswith("paired.") else None
        counts = Counts(
            segments=_count(result, root + "density.segments"),
            deviation_segments=_count(result, root + "deviation.segments"),
            points=_count(result, root + "distance.points"),
            paths=_count(result, root + "density.paths"),
            deviation_paths=_count(result, root + "deviation.paths"),
            neurons=_resolve(result, root + "model.neurons"),
            differences=_count(result, f"paired.{measure}.differences") if measure else None,
            defined_differences=_count_defined(result, f"paired.{measure}.differences") if measure else None,
            init_copies=_init_copies(result, root),
        )
        reason = metric.why_null(counts)
    notes: list[str] = []
    for key in (root + "notes", root + "model.notes"):
        v = _resolve(result, key)
        if isinstance(v, list):
            notes += [n for n in v if isinstance(n, str)]
    parent = rel.rsplit(".", 1)[0] if rel.count(".") >= 2 else rel
    for per_node in (_PER_NODE, _SLICE_PER_NODE):  # (a node name may hold dots itself)
        if rel.startswith(per_node):
            parent = per_node.rstrip(".")
    for note in notes:
        if rel in note or parent in note:
            return note if not reason else f"{reason} ({note})"
    return reason


# Parts of a result whose keys depend on the model or run (node names, classes, the slice's box).
_OPEN_PREFIXES = (
    "density.knots_per_layer.",
    "slice.boundary_length_per_layer.",
    "slice.classes.",
    "slice.box.",
)
_PER_NODE = "density.knots_per_layer."
_SLICE_PER_NODE = "slice.boundary_length_per_layer."


def names_a_node(path: str) -> bool:
    """Whether `path` is a node's per-layer value (`density.knots_per_layer.<node>` or
    `slice.boundary_length_per_layer.<node>`, also under `a.` or `b.`): all after the prefix is
    the node's ONNX name, which may hold any character (dots, spaces, operators, a newline), so a
    gate's parser takes it whole."""
    return any(path.startswith(root + prefix) and len(path) > len(root + prefix)
               for root in ("", "a.", "b.") for prefix in (_PER_NODE, _SLICE_PER_NODE))


def could_exist(path: str, compare: bool = False) -> bool:
    """Whether `path` can be a gateable path of some result of this kind (before the audit runs)."""
    if path in gateable_paths(schema_skeleton(compare)):
        return True
    if _after_gates(path):
        return False
    if path in _timing_paths(compare):
        return True
    roots = ("a.", "b.") if compare else ("",)
    prefixes = [r + p for r in roots for p in _OPEN_PREFIXES if not (compare and p.startswith("slice."))]
    return any(path.startswith(p) and len(path) > len(p) for p in prefixes)


def _timing_paths(compare: bool) -> list[str]:
    """The stages' seconds a result of this kind can hold (a comparison's own total, then each
    audit's; a comparison's audits measure no slice, so they time none)."""
    roots = ("a.", "b.") if compare else ("",)
    stages = [s for s in TIMING_STAGES if not (compare and s == "slice_s")]
    return (["timing.total_s"] if compare else []) + [r + "timing." + stage for r in roots for stage in stages]


# an audit's metrics besides slice.* that only a measured 2-D slice gives a number
_SLICE_ONLY = ("timing.slice_s", "capacity.measured.slice_regions", "capacity.measured.slice_regions_per_area_per_neuron2")


def needs_slice(path: str) -> bool:
    """Whether an audit's metric path has a number only where the 2-D slice was measured."""
    return path == "slice" or path.startswith("slice.") or path in _SLICE_ONLY


def _other_command(path: str, compare: bool) -> str:
    """Why a path that only the other command's result has cannot be gated here ('' for none):
    the closest paths of this command would only mislead."""
    head, _, rest = path.partition(".")
    if compare and head in ("a", "b") and needs_slice(rest):
        return "compare measures no 2-D slice; audit the model alone to gate on its slice.* metrics"
    if not compare and head in ("a", "b", "paired"):
        return "a.*, b.* and paired.* are metrics of regionaudit compare A.onnx B.onnx"
    return ""


def check_paths(paths: list[str], compare: bool = False) -> None:
    """Fail fast, before a long audit: GateError for a path no result of this kind can have."""
    for path in paths:
        if why := _other_command(path, compare):  # (before could_exist: a comparison's skeleton holds them, null)
            raise GateError(f"unknown metric path {path!r}: {why}")
        if could_exist(path, compare):
            continue
        listed_by = ("`regionaudit metrics` lists an audit's, which compare names under a. and b., besides its paired.*"
                     if compare else "`regionaudit metrics` lists all {n}, besides per-node and timing paths")
        listed = gateable_paths(schema_skeleton(compare))  # (what `regionaudit metrics` lists; timing besides)
        raise unknown_path_error(path, listed + _timing_paths(compare), listed_by.format(n=len(listed)))


def check_node_paths(paths: list[str], kink_names: list[str], n_outputs: int | None = None, root: str = "",
                     input_size: int | None = None) -> None:
    """Once the model is imported its kink nodes and classes are known: a per-layer path naming
    another node, or a slice class the model does not have, is a usage error before the analysis
    runs, not after it. `root` ("a." or "b." in a comparison) is what the paths were given under."""
    for prefix in (_PER_NODE, _SLICE_PER_NODE):
        valid = [prefix + name for name in kink_names]
        for path in paths:
            if path.startswith(prefix) and path not in valid:
                close = [root + prefix + n for n in difflib.get_close_matches(path.removeprefix(prefix), kink_names, n=3, cutoff=0.6)]
                names = ", ".join(repr(n) for n in kink_names[:8]) + (f" and {len(kink_names) - 8} more" if len(kink_names) > 8 else "")
                hint = f"did you mean {' or '.join(close)}?" if close else f"the model's kink nodes are {names or 'none'}"
                raise GateError(f"unknown metric path {root + path!r}: no kink node of this model has that name; {hint}")
    if input_size is not None:  # a 2-D input is sliced in its own plane, whose box is its range
        keys = ("xmin", "xmax", "ymin", "ymax") if input_size == 2 else ("half_width",)
        for path in paths:
            k = path.removeprefix("slice.box.")
            if k != path and k not in keys:
                raise GateError(f"unknown metric path {path!r}: this model's slice box has "
                                + ", ".join(f"slice.box.{key}" for key in keys))
    if n_outputs is None:
        return
    for path in paths:
        k = path.removeprefix("slice.classes.")
        if k != path and not is_class(k, n_outputs):
            last = 1 if n_outputs == 1 else n_outputs - 1
            raise GateError(f"unknown metric path {path!r}: the model's predicted classes are 0 to {last}")
