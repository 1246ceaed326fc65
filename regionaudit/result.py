"""`AuditResult`: what an audit measured, as plain data that round-trips through JSON.

The JSON written by `--json` is `AuditResult.to_dict()`; reports, cards and gates read only this.
Undefined values (no units, no segments) are `None` (JSON `null`) with a note, never NaN.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

from regionaudit import __version__
from regionaudit.slice_result import SliceResult

# JSON format version. Changes:
#   2: `model.neurons` also counts the units of Clip (ReLU6, Hardtanh), HardSigmoid and Abs nodes,
#      and `model.maxpool_windows` the windows of elementwise Max / Min of tensors and ReduceMax /
#      ReduceMin; `knots_per_layer` and `distance.points[i].node` may name those nodes.
#   1: first version.
SCHEMA = 2


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
    slice: SliceResult | None = None
    gates: list[GateResult] = field(default_factory=list)
    timing: dict = field(default_factory=dict)
    regionaudit: str = __version__
    schema: int = SCHEMA

    @classmethod
    def from_dict(cls, d: dict) -> "AuditResult":
        density = d["density"]
        deviation = d["deviation"]
        distance = d["distance"]
        return cls(
            model=ModelInfo(**d["model"]),
            settings=d["settings"],
            density=Density(
                **{
                    **density,
                    "segments": [SegmentDensity(**s) for s in density["segments"]],
                    "paths": [PathDensity(**p) for p in density["paths"]],
                }
            ),
            deviation=Deviation(
                **{
                    **deviation,
                    "segments": [SegmentDeviation(**s) for s in deviation["segments"]],
                    "paths": [SegmentDeviation(**s) for s in deviation["paths"]],
                }
            ),
            distance=Distance(**{**distance, "points": [PointDistance(**p) for p in distance["points"]]}),
            notes=d.get("notes", []),
            slice=SliceResult.from_dict(d["slice"]) if isinstance(d.get("slice"), dict) else None,
            gates=[GateResult(**g) for g in d.get("gates", [])],
            timing=d.get("timing", {}),
            regionaudit=d.get("regionaudit", __version__),
            schema=d.get("schema", SCHEMA),
        )


@dataclass
class PairedMeasure:
    """B - A per segment, in probe order (Gamba et al. 2022, Table 2)."""

    differences: list[float]
    fraction_positive: float | None
    summary: dict | None


@dataclass
class Paired:
    density: PairedMeasure  # differences in regions
    deviation: PairedMeasure  # differences in deviation norm


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
        return cls(
            a=AuditResult.from_dict(d["a"]),
            b=AuditResult.from_dict(d["b"]),
            paired=Paired(
                density=PairedMeasure(**d["paired"]["density"]),
                deviation=PairedMeasure(**d["paired"]["deviation"]),
            ),
            gates=[GateResult(**g) for g in d.get("gates", [])],
            timing=d.get("timing", {}),
            regionaudit=d.get("regionaudit", __version__),
            schema=d.get("schema", SCHEMA),
        )


def finite_or_none(x: float | None) -> float | None:
    """Floats for JSON: NaN and infinities become None (the caller adds a note)."""
    if x is None or not math.isfinite(x):
        return None
    return float(x)
