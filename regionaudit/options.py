"""Every option that changes a number, defined once.

Each field of `Options` carries its default, its help text, its allowed range and whether it
defines the probes (`probe`: recorded in `settings`, reused from a baseline and checked against
it). From this one definition come the CLI's options (`cli.py`), `audit()`'s keyword arguments,
the result's `settings` (`assemble.py`), the baseline's probe options (`gates/baseline.py`) and
the range checks below. Adding an option is adding a field here.
"""

from __future__ import annotations

import difflib
import math
import numbers
import os
import reprlib
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

from regionaudit.errors import BadOption
from regionaudit.limits import parse_size

# Bounds that keep an absurd request a usage error instead of an out-of-memory crash.
MAX_PROBES = 10**6
MAX_LOOPS = 10**4
MAX_LOOP_STEPS = 4096
MAX_LOOP_RADIUS = 1e4  # pixels; a shift beyond any image leaves zeros
MAX_SEED = 2**63 - 1  # a seed fits a signed 64-bit integer, as every JSON reader holds it
LAYOUTS = ("chw", "hwc")  # channels first or last, for image inputs
DISTANCE_METHODS = ("exact", "approx", "auto")
AUTO_APPROX_INPUT = 16384  # --distance auto: approximate above this many input elements
DEFAULT_DIRECTIONS = 256  # Gaussian projections per point for --distance approx
MAX_DIRECTIONS = 10**5
MAX_SLICE_SCALE = 10**6
# Recorded null in a result's settings where the probes given make them change nothing
# (`probes.build_probes`), as are the options with a `recorded_if` (`null_means_no_effect`).
UNUSED_WHEN_NULL = ("data_layout", "layout", "pairs", "max_points")
MAX_TIMEOUT = 10**8  # seconds (three years): the interval timer takes no more


def parse_shape(value: str | None) -> tuple[int, ...] | None:
    """`3,32,32` (or `3x32x32`) -> (3, 32, 32)."""
    if value is None:
        return None
    try:  # (every part a number: "64,x" or "64," is not 64)
        dims = tuple(int(v) for v in value.replace("x", ",").split(","))
    except ValueError:
        raise BadOption(f"--input-shape must be comma-separated integers like 3,32,32, got {value!r}") from None
    if not dims or any(d <= 0 for d in dims):
        raise BadOption(f"--input-shape must be positive integers, got {value!r}")
    return dims


def parse_memory(value: str | None) -> int | None:
    """Bytes from '512M', '2G', '1.5GiB' or a plain number."""
    return parse_size(value, "--max-memory")


def _seconds(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise BadOption(f"--timeout must be a number of seconds, got {value!r}") from None


@dataclass(frozen=True)
class Spec:
    """How an option is given, checked and recorded."""

    help: str
    default_text: str | None = None  # how the CLI help shows the default; None: the default itself
    probe: bool = False  # defines the probes: recorded in settings, reused from and checked against a baseline
    setting: bool = True  # recorded in the result's settings
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # the range excludes `low`
    choices: tuple[str, ...] | None = None
    file: bool = False  # a path to an array file; settings record it with its sha256
    flag: bool = False  # a switch without a value
    recorded_if: Callable[["Options"], bool] | None = None  # recorded as null in settings unless this holds
    parse: Callable[[str | None], Any] | None = None  # text on the command line -> value
    metavar: str | None = None  # how the CLI help names the value
    switch: bool = False  # an on/off switch: --name / --no-name
    nargs: int = 1  # values after the option on the command line
    group: str = "probe"  # "slice": an option of the audit's 2-D slice (not of compare)

    def check(self, name: str, value: Any) -> None:
        """Refuse a value outside the range (BadOption naming the option)."""
        if value is None:
            return
        flag = option_flag(name)
        if self.choices is not None and value not in self.choices:
            raise BadOption(f"{flag} must be one of {', '.join(self.choices)}, got {value!r}")
        finite = not isinstance(value, numbers.Real) or isinstance(value, numbers.Integral) or math.isfinite(value)
        if not finite and (self.low is not None or self.high is not None):
            raise BadOption(f"{flag} must be a finite number, got {value}")  # (NaN passes every comparison)
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            raise BadOption(f"{flag} must be {'>' if self.low_open else '>='} {_num(self.low)}, got {value}")
        if self.high is not None and value > self.high:
            raise BadOption(f"{flag} must be <= {_num(self.high)}, got {value}")


# what a value of each declared type may be (numpy's integers and floats are Integral and Real)
_KINDS = {
    "int": ((numbers.Integral,), "an integer"),
    "float": ((numbers.Real,), "a number"),
    "str": ((str,), "a string"),
    "bool": ((bool,), "true or false"),  # and numpy's (`_numpy_bool`)
    "str | Path": ((str, os.PathLike), "a path"),
}


def _check_type(name: str, declared: str, value: Any) -> None:
    """Refuse a value of the wrong type (from the API, or a baseline's settings read from JSON)
    with the option's name, before a range check would compare it: "abc" < 0 is a TypeError."""
    if value is None:
        return
    base = declared.removesuffix(" | None")
    if base.startswith("tuple["):
        items = [t.strip() for t in base[len("tuple[") : -1].split(",")]
        item = items[0]
        if not isinstance(value, (tuple, list)):
            raise BadOption(f"{option_flag(name)} must be a list of numbers, got {_shown(value)}")
        if "..." not in items and len(value) != len(items):  # (a 3-number box would fail later, on box[3])
            raise BadOption(f"{option_flag(name)} must be {len(items)} numbers, got {len(value)}: {value!r}")
        for v in value:
            _check_type(name, item, v)
        return
    kinds, what = _KINDS[base]
    if base == "bool" and _numpy_bool(value):
        return
    if not isinstance(value, kinds) or (base != "bool" and isinstance(value, bool)):
        raise BadOption(f"{option_flag(name)} must be {what}, got {_shown(value)}")


def _numpy_bool(value: Any) -> bool:
    """Whether value is a numpy boolean, without importing numpy: only a loaded numpy can have
    made one, and the command line reads its options before its signal handlers cover the
    libraries' loading (limits.signals_deferred)."""
    np = sys.modules.get("numpy")
    return np is not None and isinstance(value, np.bool_)


def _plain(value: Any) -> Any:
    """A checked value as Python's own type: numpy numbers and booleans (and lists of them) are
    accepted, but `settings` records the value as given, and JSON cannot hold an np.int64."""
    if isinstance(value, bool) or _numpy_bool(value):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (tuple, list)):
        return tuple(_plain(v) for v in value)
    return value


def _shown(value: Any) -> str:
    """A wrong value as a message shows it: an array given where a path goes is named by its
    type and shape, not printed row by row."""
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape):
        return f"{type(value).__name__} of shape {tuple(shape)}"
    return reprlib.repr(value)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def option(default: Any, help: str, **spec: Any) -> Any:
    return field(default=default, metadata={"spec": Spec(help=help, **spec)})


def option_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class Options:
    """Every option that changes a number; `settings` in the result records them (in this order)."""

    seed: int = option(0, "Seed for pairs and synthetic probes.", probe=True, low=0, high=MAX_SEED, metavar="S")
    pairs: int = option(
        100, "Segments between seeded random pairs of data rows.", probe=True, low=0, high=MAX_PROBES, metavar="N"
    )
    max_points: int = option(
        100, "Points for boundary distance: the first rows.", probe=True, low=0, high=MAX_PROBES, metavar="N"
    )
    loops: int = option(
        0, "Closed translation loops around the first N images.", probe=True, low=0, high=MAX_LOOPS, metavar="N"
    )
    loop_radius: float = option(
        2.0, "Loop radius in pixels.", default_text="2", probe=True, low=0, low_open=True, high=MAX_LOOP_RADIUS,
        recorded_if=lambda o: bool(o.loops), metavar="PIXELS",
    )
    loop_steps: int = option(
        16, "Shifts per loop.", probe=True, low=3, high=MAX_LOOP_STEPS, recorded_if=lambda o: bool(o.loops), metavar="M"
    )
    layout: str = option(
        "chw", "The model's image layout, for loops.", probe=True, choices=LAYOUTS,
        # it matters for loops, and for files in another layout (they are transposed to it)
        recorded_if=lambda o: bool(o.loops) or o.data_layout != o.layout,
    )
    data_layout: str = option(
        "chw",
        "Layout of the image arrays in --data, --points and --segments; transposed to the model's --layout when "
        "they differ.",
        probe=True,
        choices=LAYOUTS,
    )
    dtype: str = option("float64", "Precision. float32 is faster, but its region counts can differ from float64's (a note says so).",
                        probe=True, choices=("float64", "float32"))
    device: str = option("cpu", "Where the analysis runs; auto takes cuda when available.", choices=("auto", "cpu", "cuda"))
    max_knots: int | None = option(
        None, "Stop a segment after this many knots (noted in the result).", probe=True, low=1, metavar="K"
    )
    input_shape: tuple[int, ...] | None = option(
        None, "Input shape without the batch axis, e.g. 3,32,32.", probe=True, parse=parse_shape, metavar="SHAPE"
    )
    output_name: str | None = option(
        None, "Graph output to analyse.", default_text="the first", probe=True, metavar="NAME"
    )
    # recorded in settings by distance_method.distance_settings, once the input size has chosen the method
    distance: str = option(
        "auto",
        f"Boundary distance: exact, approx (Gaussian projections) or auto (approx above {AUTO_APPROX_INPUT} input "
        "elements).",
        probe=True,
        setting=False,
        choices=DISTANCE_METHODS,
    )
    distance_directions: int = option(
        DEFAULT_DIRECTIONS, "Gaussian projections per point for --distance approx.", probe=True, setting=False, low=1,
        high=MAX_DIRECTIONS, metavar="M",
    )
    data: str | Path | None = option(None, "Data rows (.npy or one-array .npz), (N, *input_shape) or flat.", file=True)
    points: str | Path | None = option(None, "Points for boundary distance, (N, *input_shape).", file=True)
    segments: str | Path | None = option(None, "Explicit segments, (N, 2, *input_shape).", file=True)
    max_memory: int | None = option(
        None, "Memory bound for batched work, e.g. 2G.", default_text="a fraction of free memory", setting=False, low=1,
        parse=parse_memory, metavar="SIZE",
    )
    max_file_size: int | None = option(
        None, "Largest model or data file accepted (an .npz member by its header), e.g. 4G.", default_text="2G",
        setting=False, low=1, parse=lambda v: parse_size(v, "--max-file-size"), metavar="SIZE",
    )
    timeout: float | None = option(
        None, "Stop cleanly (exit 2, nothing written) after this many seconds.", default_text="no limit",
        setting=False, low=0, low_open=True, high=MAX_TIMEOUT, parse=lambda v: None if v is None else _seconds(v),
        metavar="SECONDS",
    )
    keep_knots: bool = option(False, "Store knot positions per segment in the JSON.", setting=False, flag=True)
    # reference frame (frame.py)
    init_reference: int = option(
        2, "Re-initialised copies of the architecture measured as a reference (0: off).", probe=True, low=0, high=64,
        metavar="K",
    )
    labels: str | Path | None = option(
        None, "One integer class per data row (.npy): splits segments into same-class and different-class.", file=True
    )
    # --- 2-D slice (slice_audit.py): recorded only when the slice is measured
    slice: bool = option(
        True, "Exact 2-D slice through three data points.", default_text="on", probe=True, switch=True, group="slice"
    )
    slice_points: str | Path | None = option(
        None, "The slice's three points, (3, *input_shape).", file=True, recorded_if=lambda o: o.slice,
        metavar="P.npy", group="slice",
    )
    slice_scale: float = option(
        1.25, "Half-width of the slice's square / circumradius.", probe=True, low=0, low_open=True,
        high=float(MAX_SLICE_SCALE), recorded_if=lambda o: o.slice, metavar="S", group="slice",
    )
    slice_box: tuple[float, float, float, float] | None = option(
        None, "The slice's box, for models with a 2-D input.", default_text="data range + 10%", probe=True, nargs=4,
        recorded_if=lambda o: o.slice, metavar="XMIN XMAX YMIN YMAX", group="slice",
    )
    max_regions: int | None = option(
        200_000, "Stop the slice's partition once it holds this many regions (noted).", probe=True, low=1,
        recorded_if=lambda o: o.slice, metavar="N", group="slice",
    )
    keep_polygons: bool = option(
        False, "Store every slice region's polygon in the JSON.", setting=False, flag=True, group="slice"
    )
    slice_color: str = option(
        "region", "Colour slice regions apart, or by predicted class (the picture only).", setting=False,
        choices=("region", "class"), group="slice",
    )
    # which options were given explicitly (the others are defaults a baseline may fill)
    given: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def __post_init__(self) -> None:
        for f in fields(self):
            if "spec" in f.metadata:
                spec, value = f.metadata["spec"], getattr(self, f.name)
                if isinstance(value, str) and spec.parse is not None:  # "2G", "3,32,32": as the command line takes it
                    object.__setattr__(self, f.name, spec.parse(value))
                _check_type(f.name, f.type, getattr(self, f.name))
                object.__setattr__(self, f.name, _plain(getattr(self, f.name)))
                spec.check(f.name, getattr(self, f.name))

    @classmethod
    def from_given(cls, given: dict[str, Any]) -> "Options":
        """Options from the values a user gave (None or absent: not given, the default applies)."""
        values = {k: v for k, v in given.items() if v is not None}
        return cls(**values, given=frozenset(values))

    def with_values(self, **values: Any) -> "Options":
        return replace(self, **values)


def option_specs() -> dict[str, Spec]:
    """Every option's Spec, in the order of `Options` (the order of `settings`)."""
    return {f.name: f.metadata["spec"] for f in fields(Options) if "spec" in f.metadata}


def check_names(names) -> None:
    """Keyword options given to `audit()`: a misspelt one is a BadOption naming the closest, not
    Python's TypeError from the dataclass."""
    known = option_specs()
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "the options are the fields of regionaudit.options.Options"
            raise BadOption(f"unknown option {name!r}: {hint}")


def null_means_no_effect(name: str) -> bool:
    """Whether a null `name` in a result's settings says the option changed nothing in that run
    (not that it was unset, as a null --max-knots is no limit)."""
    spec = option_specs().get(name)
    # (an option whose own default is null, --slice-box, records null for "the default" too)
    return name in UNUSED_WHEN_NULL or (spec is not None and spec.recorded_if is not None and option_defaults().get(name) is not None)


def option_defaults() -> dict[str, Any]:
    return {f.name: f.default for f in fields(Options) if "spec" in f.metadata}


def probe_option_names() -> tuple[str, ...]:
    """The options that define the probes, which a baseline run reuses; files are matched by hash."""
    return tuple(name for name, spec in option_specs().items() if spec.probe)


def slice_option_names() -> tuple[str, ...]:
    """The options of the audit's 2-D slice (compare measures no slice)."""
    return tuple(name for name, spec in option_specs().items() if spec.group == "slice")


def file_option_names() -> tuple[str, ...]:
    return tuple(name for name, spec in option_specs().items() if spec.file)


LABELS_WITHOUT_PAIRS = (
    "--labels was given, but the segments do not run between data rows (--segments): same-class and "
    "different-class segments are told apart by the model's predicted classes at the endpoints."
)


def ineffective(opts: Options, exact_distance: bool | None = None, typed: frozenset[str] | None = None,
                input_size: int | None = None) -> list[str]:
    """A sentence for each option given that has no effect with the probes given: a person who
    typed it expects it to matter, so it is said rather than silently ignored. `exact_distance`:
    whether `--distance` measures this model's distances exactly (auto decides by input size).
    `typed`: the options the user typed, where a baseline filled in others (`opts.given` holds
    both): only a typed one is said, but the probes are all that are given. `input_size`: the
    model's input elements, where known."""
    given = opts.given
    typed = given if typed is None else typed
    files = [k for k in file_option_names() if k in given]
    loops = "loops" in given and bool(opts.loops)
    out = []
    if "pairs" in typed and ("segments" in given or ("data" not in given and "points" in given)):
        why = "--segments gives the segments" if "segments" in given else "--points alone gives no data rows to pair"
        out.append(f"--pairs {opts.pairs} has no effect: {why}.")
    if "max_points" in typed and ("points" in given or ("data" not in given and "segments" in given)):
        why = "--points gives the points" if "points" in given else "--segments alone gives no data rows for points"
        out.append(f"--max-points {opts.max_points} has no effect: {why}.")
    for key in ("loop_radius", "loop_steps"):
        if key in typed and not loops:
            out.append(f"{option_flag(key)} {getattr(opts, key)} has no effect without --loops.")
    if "layout" in typed and not loops and (not files or opts.data_layout == opts.layout):
        out.append(f"--layout {opts.layout} has no effect: there are no --loops and no arrays in another --data-layout.")
    if "data_layout" in typed and not files:
        out.append(f"--data-layout {opts.data_layout} has no effect: no --data, --points or --segments file was given.")
    if "labels" in typed and "segments" in given and "data" in given:  # (without --data they are refused)
        out.append(LABELS_WITHOUT_PAIRS)
    if "distance_directions" in typed and (opts.distance == "exact" or (opts.distance == "auto" and exact_distance)):
        why = "with --distance exact" if opts.distance == "exact" else "here: --distance auto measures this model's distances exactly"
        out.append(f"--distance-directions {opts.distance_directions} has no effect {why} (it sets the approximate method's projections).")
    if opts.slice and "slice_scale" in typed and input_size == 2:
        out.append(f"--slice-scale {opts.slice_scale:g} has no effect: a model with a 2-D input is sliced in its input "
                   "plane, over the data's range (or --slice-box).")
    if not opts.slice:
        for key in slice_option_names():
            if key != "slice" and key in typed:
                out.append(f"{option_flag(key)} has no effect with --no-slice.")
    return out
