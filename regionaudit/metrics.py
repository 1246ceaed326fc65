"""The metric catalogue: each metric of a result defined once.

A metric's path in the JSON, its label, what it means, and why it can be undefined (null). Every
metric is shown in one number format (`report.formatting.num`, SIGNIFICANT digits). The report's headline cards, its distribution table and
comparison rows, the model card, the audit's notes and the gates' reasons all read it from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

SUMMARY_KEYS = ("count", "mean", "median", "p10", "p90", "min", "max", "ci95_low", "ci95_high")
# Seconds per stage under `timing` (`slice_s` where a slice was measured; a comparison's own
# `timing` holds `total_s`), so a gate on a misspelt stage is refused before the audit runs.
TIMING_STAGES = ("import_s", "density_s", "distance_s", "slice_s", "reference_s", "total_s")

# Why a value is null: each reason written once, as a clause; `sentence` makes it a sentence.
NO_SEGMENTS = "no segments were measured"
NO_POINTS = "no points were measured"
NO_UNITS = "the model has no ReLU-type units"
NO_LENGTH = "no segment has a nonzero length"
NO_LOOPS = "no closed paths were measured (they are measured with --loops N)"
NO_BOUNDARY = "no point has a boundary within reach (no unit with a nonzero gradient)"
NO_PAIRS = "no segments were compared"
NO_DEFINED_PAIRS = ("no pair has a difference: every segment was cut short by --max-knots in A or B, or every point "
                    "has no boundary distance in one of them")
NO_SLICE_REGIONS = "the 2-D slice holds no region of nonzero area"
ALL_TRUNCATED = "every segment was cut short by --max-knots"
INIT_ALL_TRUNCATED = ("--max-knots cut short every segment the initialisation reference measured, in the model or a copy "
                      "(a ratio of lower bounds means nothing)")
SPEARMAN_CONSTANT = "Spearman correlation is undefined when density or deviation is constant across segments"
SPEARMAN_UNDEFINED = "fewer than 3 segments or a constant series"


def spearman_too_few(n: int) -> str:
    return f"Spearman correlation needs at least 3 segments, found {n}"


def capital(clause: str) -> str:
    return clause[:1].upper() + clause[1:]


def sentence(clause: str) -> str:
    """"no segments were measured" -> "No segments were measured."."""
    return capital(clause) + "."


@dataclass(frozen=True)
class Counts:
    """What an audit measured, as far as the reasons for a null value need it (None: unknown)."""

    segments: int | None = None
    deviation_segments: int | None = None
    points: int | None = None
    paths: int | None = None
    deviation_paths: int | None = None
    neurons: int | None = None
    differences: int | None = None  # paired differences of a comparison
    defined_differences: int | None = None  # those not null (both sides measured in full)
    init_copies: int | None = None  # re-initialised copies measured (--init-reference; 0: none)


def _segments(c: Counts) -> str:
    return NO_SEGMENTS if c.segments == 0 else ""


def _per_length(c: Counts) -> str:
    return NO_SEGMENTS if c.segments == 0 else NO_LENGTH


def _per_neuron(c: Counts) -> str:
    return NO_SEGMENTS if c.segments == 0 else NO_UNITS if c.neurons == 0 else ""


def _loops(c: Counts) -> str:
    return NO_LOOPS if c.paths == 0 or c.deviation_paths == 0 else ""


def _deviation(c: Counts) -> str:
    return NO_SEGMENTS if c.deviation_segments == 0 else ""


def _spearman(c: Counts) -> str:
    n = c.deviation_segments
    return spearman_too_few(n) if n is not None and n < 3 else SPEARMAN_CONSTANT


def _distance(c: Counts) -> str:
    return NO_POINTS if c.points == 0 else NO_UNITS if c.neurons == 0 else NO_BOUNDARY


def _slice(c: Counts) -> str:
    return NO_SLICE_REGIONS


def _ratio_to_init(c: Counts) -> str:
    if c.segments == 0:
        return NO_SEGMENTS
    if c.init_copies == 0:
        return "no initialisation reference was measured (--init-reference 0)"
    return INIT_ALL_TRUNCATED if c.init_copies else ""


def _paired(c: Counts) -> str:
    if c.differences == 0:
        return NO_PAIRS
    return NO_DEFINED_PAIRS if c.defined_differences == 0 else ""


@dataclass(frozen=True)
class Metric:
    path: str  # dotted path in an audit's JSON (a compare's paired metrics start with "paired.")
    label: str
    meaning: str  # one sentence; {between}, {at}, {near} name the probes, {approx} the distance method (report.card)
    why_null: Callable[[Counts], str]
    summary: bool = True  # a summary {count, mean, median, p10, p90, min, max}, or a single number
    loops: bool = False  # measured only with --loops
    slice: bool = False  # measured only with the 2-D slice (off with --no-slice and in compare)

    def describe(self, **words: str) -> str:
        return self.meaning.format(**words)


METRICS: tuple[Metric, ...] = (
    Metric(
        "density.summary",
        "Regions per segment",
        "Linear pieces the model splits a straight line between {between} into; more means a more complex "
        "function {near}.",
        _segments,
    ),
    Metric(
        "density.per_length",
        "Regions per unit length",
        "Regions per segment divided by the segment's length in input space.",
        _per_length,
    ),
    Metric(
        "density.regions_per_neuron",
        "Regions per neuron",
        "Regions per segment divided by the number of ReLU-type neurons.",
        _per_neuron,
    ),
    Metric(
        "density.ratio_to_init",
        "Trained / init regions",
        "Per segment, trained regions over the mean at initialisation (the same architecture re-initialised, "
        "He-normal weights; --init-reference); 1 means training left the complexity unchanged.",
        _ratio_to_init,
    ),
    Metric(
        "density.path_summary",
        "Regions per translation loop",
        "Regions crossed along a closed loop of shifted copies of an input.",
        _loops,
        loops=True,
    ),
    Metric(
        "deviation.summary",
        "Absolute deviation",
        "How far the model departs from the straight line between its values at the two ends of a segment "
        "(Gamba et al. 2022); 0 means linear.",
        _deviation,
    ),
    Metric(
        "deviation.path_summary",
        "Absolute deviation per translation loop",
        "The same deviation summed along a closed loop of shifted copies of an input.",
        _loops,
        loops=True,
    ),
    Metric(
        "deviation.spearman_density",
        "Density vs deviation (Spearman ρ)",
        "Rank correlation between a segment's region density and its absolute deviation.",
        _spearman,
        summary=False,
    ),
    Metric(
        "distance.summary",
        "Boundary distance",
        "Distance from {at} to the nearest activation-region boundary (input units){approx}; smaller means "
        "smaller regions {near}.",
        _distance,
    ),
    Metric(
        "distance.scaled_summary",
        "Boundary distance × neurons",
        "The same distance times the neuron count, roughly scale-free (Hanin & Rolnick 2019).",
        _distance,
    ),
    Metric(
        "slice.area",
        "Slice region area",
        "Area of each activation region of the 2-D slice (Hanin & Rolnick 2019a, Fig. 1), in squared input "
        "units; smaller means a finer partition.",
        _slice,
        slice=True,
    ),
    Metric(
        "slice.regions",
        "Regions in the 2-D slice",
        "Activation regions of the 2-D slice's box, counted exactly (a lower bound when --max-regions stopped it).",
        _slice,
        summary=False,
        slice=True,
    ),
    Metric(
        "slice.regions_per_unit_area",
        "Slice regions per unit area",
        "Regions of the 2-D slice divided by the box's area.",
        _slice,
        summary=False,
        slice=True,
    ),
    Metric(
        "slice.boundary_length",
        "Slice boundary length",
        "Total length of the region boundaries inside the 2-D slice's box.",
        _slice,
        summary=False,
        slice=True,
    ),
    Metric(
        "slice.decision_boundary.length",
        "Slice decision boundary length",
        "Length of the decision boundary (where the predicted class changes) inside the 2-D slice's box.",
        _slice,
        summary=False,
        slice=True,
    ),
)

PAIRED_METRICS: tuple[Metric, ...] = (
    Metric("paired.density.summary", "Region count, B − A", "B − A per segment, in regions.", _paired),
    Metric(
        "paired.density.fraction_positive",
        "B has more regions",
        "The share of segments where B crosses more regions than A (Gamba et al. 2022, Table 2).",
        _paired,
        summary=False,
    ),
    Metric("paired.deviation.summary", "Absolute deviation, B − A", "B − A per segment, in deviation.", _paired),
    Metric("paired.distance.summary", "Boundary distance, B − A", "B − A per point (the same points), in input units.", _paired),
    Metric(
        "paired.deviation.fraction_positive",
        "B deviates more from linear",
        "The share of segments where B's absolute deviation is larger than A's.",
        _paired,
        summary=False,
    ),
)

BY_PATH: dict[str, Metric] = {m.path: m for m in METRICS + PAIRED_METRICS}


def metric_at(path: str) -> Metric | None:
    """The metric a gateable path belongs to (`density.summary.median` -> density.summary)."""
    for m in METRICS + PAIRED_METRICS:
        if path == m.path or path.startswith(m.path + "."):
            return m
    return None
