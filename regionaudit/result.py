"""`AuditResult`: what an audit measured, as plain data that round-trips through JSON.

The JSON written by `--json` is `AuditResult.to_dict()`; reports, cards and gates read only this.
Undefined values (no units, no segments) are `None` (JSON `null`) with a note, never NaN.
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from regionaudit.errors import BadData, GateError
from regionaudit.slice_result import SliceResult
from regionaudit.version import __version__

# The JSON format's version. Bump it whenever the JSON changes, and say how here:
#   4: definitions changed: a single-output model's segments are same-class or different-class by
#      the output's sign (`density.by_class`, `deviation.by_class`: all were same-class before);
#      a loop also counts the boundaries it crosses exactly at a vertex (`density.paths`,
#      `density.path_summary`); `model.output_shape` leaves the batch axis out;
#      `distance.relative_error` is the χ² law's 3σ error (was its first-order form); `capacity`:
#      Xiong's count reads an imported conv's receptive fields without the graph's batch axis, and
#      an exact or lower count needs biases and a dense map of the whole layer before.
#   3: fields added, no definition changed: `environment`; `capacity`; `reference.init`; `slice`;
#      `ci95_low` / `ci95_high` in every summary; `density.ratio_to_init`, `density.by_class`,
#      `density.profile`, `deviation.spearman`, `deviation.by_class`, `segments[i].same_class`;
#      `distance.method`, `.directions`, `.relative_error`; `paired.distance`, `paired.*.tests`;
#      `settings` gains `data_layout`, `distance`, `distance_directions`, `init_reference`,
#      `labels`, the slice options; `timing.report_s`, `timing.slice_s`, `timing.reference_s`.
#   2: `model.neurons` also counts the units of Clip (ReLU6, Hardtanh), HardSigmoid and Abs nodes,
#      and `model.maxpool_windows` the windows of elementwise Max / Min of tensors and ReduceMax /
#      ReduceMin; `knots_per_layer` and `distance.points[i].node` may name those nodes.
#   1: first version.
# Rules that keep results readable across releases:
# - a field added later has a default, so a result written before it still loads (it gets the
#   default); fields this version does not know are ignored when a result is read;
# - when the definition of a metric changes (what it counts, its unit), list its path under the
#   new version in CHANGED_DEFINITIONS: `--max-increase` then refuses to compare it with a
#   baseline written before, naming both versions.
SCHEMA = 4
CHANGED_DEFINITIONS: dict[int, tuple[str, ...]] = {  # schema version -> metric paths redefined in it
    2: ("model.neurons", "model.maxpool_windows", "density.regions_per_neuron", "distance.scaled_summary"),
    4: ("density.by_class", "deviation.by_class", "density.paths", "density.path_summary", "model.output_shape",
        "distance.relative_error", "capacity"),
}


def definition_changes(path: str, since: int, until: int | None = None) -> list[int]:
    """The schema versions after `since` and up to `until` (this one) that changed the definition of `path`."""
    until = SCHEMA if until is None else until
    return [
        version
        for version, paths in sorted(CHANGED_DEFINITIONS.items())
        if since < version <= until and any(path == p or path.startswith(p + ".") for p in paths)
    ]


@dataclass
class ModelInfo:
    path: str
    sha256: str
    input_shape: list[int]
    output_shape: list[int]
    neurons: int
    maxpool_windows: int
    params: int
    macs: int
    opset: int
    producer: str
    input_name: str
    output_name: str
    nodes: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    validation: dict = field(default_factory=dict)


@dataclass
class SegmentDensity:
    regions: int
    length: float
    density: float | None  # regions per unit length; None for a zero-length segment
    knots_per_layer: dict[str, int]
    truncated: bool = False
    knots: list[float] | None = None  # knot positions t in [0, 1], only with --keep-knots
    same_class: bool | None = None  # endpoints in the same class (labels, or predicted classes)


@dataclass
class PathDensity:
    """A closed path (translation loop): boundaries crossed over all its edges."""

    regions: int
    length: float
    density: float | None
    knots_per_layer: dict[str, int]
    edges: int
    truncated: bool = False


@dataclass
class Density:
    segments: list[SegmentDensity] = field(default_factory=list)
    paths: list[PathDensity] = field(default_factory=list)
    summary: dict | None = None  # over segments' regions
    per_length: dict | None = None  # over segments' density
    regions_per_neuron: dict | None = None  # over segments' regions / neurons
    path_summary: dict | None = None  # over paths' regions
    knots_per_layer: dict[str, int] = field(default_factory=dict)  # totals over segments
    # reference frame (frame.py): trained / init regions per segment, class split, one segment's profile
    ratio_to_init: dict | None = None
    by_class: dict | None = None
    profile: dict | None = None

    @property
    def cut_segments(self) -> int:
        """Segments --max-knots stopped: their counts, and summaries over them, are lower bounds."""
        return sum(bool(seg.truncated) for seg in self.segments)


def reference_cut_short(reference: dict, trained_truncated: list[bool]) -> set[int]:
    """The segments of an init reference (`reference.init`) that --max-knots cut short in the
    trained model (`trained_truncated`, per segment) or in a copy: their counts are lower bounds."""
    return {i for i in range(reference["segments"])
            if (i < len(trained_truncated) and trained_truncated[i]) or any(s["segments"]["truncated"][i] for s in reference["per_seed"])}


@dataclass
class SegmentDeviation:
    per_output: list[float] | None  # None where --max-knots cut the segment short
    norm: float | None


@dataclass
class Deviation:
    segments: list[SegmentDeviation] = field(default_factory=list)
    paths: list[SegmentDeviation] = field(default_factory=list)
    summary: dict | None = None  # over segments' norm
    path_summary: dict | None = None
    spearman_density: float | None = None  # Spearman rho between segment density and norm
    spearman: dict | None = None  # rho with its p-value and bootstrap ci95
    by_class: dict | None = None  # summaries of same-class and different-class segments


@dataclass
class PointDistance:
    distance: float | None
    node: str | None
    unit: int | None
    scaled: float | None  # distance x neurons


@dataclass
class Distance:
    points: list[PointDistance] = field(default_factory=list)
    summary: dict | None = None  # over distance
    scaled_summary: dict | None = None  # over distance x neurons
    method: str = "exact"  # "approx": gradient norms from Gaussian projections
    directions: int | None = None  # projections per point (approx only)
    relative_error: float | None = None  # 3σ relative error of each unit's distance (approx only)


@dataclass
class GateResult:
    expr: str
    value: float | None
    passed: bool
    message: str = ""


class _JsonDocument:
    """A top-level result: its JSON is its dataclass fields, and never holds NaN."""

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)


@dataclass
class AuditResult(_JsonDocument):
    model: ModelInfo
    settings: dict
    density: Density
    deviation: Deviation
    distance: Distance
    notes: list[str] = field(default_factory=list)
    slice: SliceResult | None = None  # the exact 2-D slice; None when not measured (--no-slice, compare)
    capacity: dict | None = None  # theoretical bounds (capacity.py)
    reference: dict | None = None  # {"init": ...}: the architecture re-initialised (reference.py)
    gates: list[GateResult] = field(default_factory=list)
    timing: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)  # library versions, device, dtype, threads
    regionaudit: str = __version__
    schema: int = SCHEMA

    @classmethod
    def from_dict(cls, d: dict) -> "AuditResult":
        """Read the dict of an audit's JSON, of this schema or an older one (see SCHEMA); one that
        is not a complete audit result is BadData."""
        with _reading(cls, d):
            return cls._from_dict(d)

    @classmethod
    def _from_dict(cls, d: dict) -> "AuditResult":
        density, deviation, distance = d["density"], d["deviation"], d["distance"]
        return _record(
            cls,
            d,
            model=_record(ModelInfo, d["model"]),
            density=_record(
                Density,
                density,
                segments=[_record(SegmentDensity, s) for s in density.get("segments", [])],
                paths=[_record(PathDensity, p) for p in density.get("paths", [])],
            ),
            deviation=_record(
                Deviation,
                deviation,
                segments=[_record(SegmentDeviation, s) for s in deviation.get("segments", [])],
                paths=[_record(SegmentDeviation, s) for s in deviation.get("paths", [])],
            ),
            distance=_record(Distance, distance, points=[_record(PointDistance, p) for p in distance.get("points", [])]),
            slice=SliceResult.from_dict(d["slice"]) if isinstance(d.get("slice"), dict) and "regions" in d["slice"] else None,
            gates=[_record(GateResult, g) for g in d.get("gates", [])],
        )


@dataclass
class PairedMeasure:
    """B - A per segment, in probe order (Gamba et al. 2022, Table 2)."""

    differences: list[float]
    fraction_positive: float | None
    summary: dict | None
    tests: dict | None = None  # wilcoxon_* and sign_test_* p-values (stats.paired_tests)

    @property
    def pairs(self) -> int:
        """The differences defined (a segment cut short in A or B, or a point without a distance, has none)."""
        return sum(d is not None for d in self.differences)


@dataclass
class Paired:
    density: PairedMeasure  # differences in regions
    deviation: PairedMeasure  # differences in deviation norm
    distance: PairedMeasure | None = None  # differences in boundary distance at the same points


@dataclass
class CompareResult(_JsonDocument):
    """`regionaudit compare A B`: both audits on the same probes and their paired differences."""

    a: AuditResult
    b: AuditResult
    paired: Paired
    gates: list[GateResult] = field(default_factory=list)
    timing: dict = field(default_factory=dict)
    regionaudit: str = __version__
    schema: int = SCHEMA

    @classmethod
    def from_dict(cls, d: dict) -> "CompareResult":
        """Read the dict of a comparison's JSON, of this schema or an older one (see SCHEMA); one
        that is not a complete comparison is BadData."""
        with _reading(cls, d):
            return _record(
                cls,
                d,
                a=AuditResult.from_dict(d["a"]),
                b=AuditResult.from_dict(d["b"]),
                paired=_record(
                    Paired,
                    d["paired"],
                    density=_record(PairedMeasure, d["paired"]["density"]),
                    deviation=_record(PairedMeasure, d["paired"]["deviation"]),
                    distance=_record(PairedMeasure, d["paired"]["distance"]) if d["paired"].get("distance") else None,
                ),
                gates=[_record(GateResult, g) for g in d.get("gates", [])],
            )


@contextmanager
def _reading(cls, d):
    """`cls.from_dict(d)`'s errors as the project's: a dict that is not a complete result of that
    kind (a compare result read as an audit, a key missing, a value of the wrong type) is BadData."""
    if not isinstance(d, dict):
        raise BadData(f"not a regionaudit result: {cls.__name__}.from_dict reads the dict of its JSON (json.load), "
                      f"not {type(d).__name__}")
    try:
        yield
    except KeyError as e:
        raise BadData(f"not a complete regionaudit result JSON: key {e} is missing") from None
    except (TypeError, AttributeError, ValueError) as e:
        raise BadData(f"not a valid regionaudit result JSON: {e}") from None


def _record(cls, d: dict, **parts):
    """A result dataclass from its JSON object: `parts` already built, a field the object lacks
    takes its default (fields added in a later schema have one), fields the class does not know
    are ignored. A missing field without a default is a KeyError: the JSON is incomplete."""
    if not isinstance(d, dict):
        raise TypeError(f"{cls.__name__} must be a JSON object, not {type(d).__name__}")
    values = {}
    for f in fields(cls):
        if f.name in parts:
            values[f.name] = parts[f.name]
        elif f.name in d:
            values[f.name] = d[f.name]
        elif f.default is MISSING and f.default_factory is MISSING:
            raise KeyError(f.name)
    return cls(**values)


def finite_or_none(x: float | None) -> float | None:
    """Floats for JSON: NaN and infinities become None (the caller adds a note)."""
    if x is None or not math.isfinite(x):
        return None
    return float(x)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def load_result(path: str | Path, what: str = "result", allow_compare: bool = True) -> dict:
    """The dict of a regionaudit result JSON (an audit or a compare); anything else -> GateError."""
    p = Path(path)
    if not p.is_file():
        raise GateError(f"{what} file {p} not found" if not p.exists() else f"{what} {p} is not a file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise GateError(f"{what} {p} cannot be read: {e}") from None
    try:
        d = json.loads(text, parse_constant=_reject_constant)
    except ValueError as e:
        raise GateError(f"{what} {p} is not JSON: {e}") from None
    if not isinstance(d, dict) or "schema" not in d or "regionaudit" not in d:
        raise GateError(f"{what} {p} is not a regionaudit result JSON (no 'regionaudit'/'schema' keys)")
    schema = d.get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool) or schema > SCHEMA or schema < 1:
        raise GateError(
            f"{what} {p} has JSON schema {schema!r}; this regionaudit reads schema {SCHEMA} "
            f"(written by regionaudit {d.get('regionaudit')!r})"
        )
    is_compare = "paired" in d
    if is_compare and not allow_compare:
        raise GateError(
            f"{what} {p} is a `regionaudit compare` result; a {what} must be the JSON of a single-model audit"
        )
    required = ("a", "b", "paired") if is_compare else ("model", "settings", "density", "deviation", "distance")
    missing = [k for k in required if k not in d]
    if missing:
        kind = "compare" if is_compare else "audit"
        raise GateError(f"{what} {p} is not a complete regionaudit {kind} JSON: missing {', '.join(missing)}")
    try:
        (CompareResult if is_compare else AuditResult).from_dict(d)
    except BadData as e:
        raise GateError(f"{what} {p} is {e}") from None
    return d
