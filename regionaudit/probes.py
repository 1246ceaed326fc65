"""Probes: where the analysis looks (segments between data rows, closed loops, points).

`build_probes` reads the files named in `Options` and makes every probe; everything here is plain
numpy in float64 and depends only on the seed and the inputs, so the same seed and the same files
give the same probes on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from regionaudit.errors import BadData, BadOption
from regionaudit.files import load_array, sha256_of
from regionaudit.options import Options

MAX_PROBE_ELEMENTS = 2**31  # an absurd probe file is refused before anything is allocated for it
SYNTHETIC_ROWS = 100
IMPORT_CHECK_ROWS = 8


@dataclass
class Loop:
    """A closed polyline through `vertices` (M, *input_shape): edges m -> m+1 and M-1 -> 0."""

    vertices: np.ndarray
    source_row: int

    @property
    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        return self.vertices, np.roll(self.vertices, -1, axis=0)


@dataclass
class Probes:
    segments: tuple[np.ndarray, np.ndarray]  # start and end points, each (S, *input_shape)
    points: np.ndarray  # (N, *input_shape)
    loops: list[Loop] = field(default_factory=list)
    synthetic: bool = False
    description: str = ""
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # notes that also go to stderr at once
    hashes: dict[str, str] = field(default_factory=dict)  # sha256 of each probe file read, by option name
    data_rows: int | None = None  # rows in the data file
    unused: list[str] = field(default_factory=list)  # options the probes made no use of (null in settings)
    pair_rows: tuple[np.ndarray, np.ndarray] | None = None  # data rows of each segment's endpoints
    rows: np.ndarray | None = None  # the data (or synthetic) rows the probes came from; the 2-D slice's points




def _shape_in(shape: tuple[int, ...], src: str, dst: str) -> tuple[int, ...]:
    """An image shape (3 axes) given in layout `src`, written in layout `dst`."""
    if src == dst:
        return tuple(shape)
    return (shape[2], shape[0], shape[1]) if src == "hwc" else (shape[1], shape[2], shape[0])


def _transpose(arr: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Images (leading axes, then 3 image axes) from layout `src` to `dst`; a contiguous copy."""
    if src == dst:
        return arr
    lead = tuple(range(arr.ndim - 3))
    first, second, third = arr.ndim - 3, arr.ndim - 2, arr.ndim - 1
    axes = (third, first, second) if src == "hwc" else (second, third, first)
    return np.ascontiguousarray(arr.transpose(lead + axes))


def _fmt(shape, lead: tuple = ("N",)) -> str:
    return "(" + ", ".join(map(str, (*lead, *shape))) + ")"


LAYOUT_AXES = {"chw": "(channels, height, width)", "hwc": "(height, width, channels)"}


def as_rows(
    arr: np.ndarray,
    input_shape: tuple[int, ...],
    what: str,
    data_layout: str = "chw",
    model_layout: str = "chw",
    notes: list[str] | None = None,
    lead: int = 1,
) -> np.ndarray:
    """Rows as (N, *input_shape), in the model's layout (`lead` leading axes: 2 for segments).

    Accepted: (N, *input_shape) written in `data_layout`, or flat rows (N, prod(input_shape)) read
    row-major in `data_layout`. Image rows are transposed when `data_layout` differs from the
    model's `model_layout`. The one other reshape is between image rows and a flat model, e.g.
    digits saved as (N, 1, 8, 8) for an MLP over 64 features; it is noted. Any other shape, even
    with the right number of values, is refused: a row-major reshape of channels-last images into
    channels-first would scramble every image and still give plausible numbers.
    """
    input_shape = tuple(input_shape)
    head, rest = tuple(arr.shape[:lead]), tuple(arr.shape[lead:])
    given = arr.ndim > lead  # at least one axis per row
    size = math.prod(input_shape)
    image_model = len(input_shape) == 3
    if data_layout != model_layout and not image_model and len(rest) != 3:
        if model_layout != "chw":  # (--layout was given: the model's input is what does not fit)
            raise BadOption(
                f"--layout {model_layout} describes a model whose input is one image {LAYOUT_AXES[model_layout]}; "
                f"this model's input shape is {input_shape}"
            )
        raise BadOption(
            f"--data-layout {data_layout} describes image arrays {LAYOUT_AXES[data_layout]}; {what} rows have "
            f"shape {rest} and the model's input shape is {input_shape}"
        )
    if image_model:
        expected = _shape_in(input_shape, model_layout, data_layout)
        if given and rest == expected:
            return _transpose(arr, data_layout, model_layout)
        if rest == (size,):
            if notes is not None:
                notes.append(
                    f"{what} rows are flat ({size} values): read row-major as {data_layout} images of shape "
                    f"{expected}" + (f", then transposed to the model's {model_layout} layout." if data_layout != model_layout else ".")
                )
            return _transpose(arr.reshape(*head, *expected), data_layout, model_layout)
    elif given and rest == input_shape:
        return arr
    elif len(input_shape) == 1 and len(rest) >= 2 and math.prod(rest) == size:
        rows = _transpose(arr, data_layout, model_layout) if len(rest) == 3 else arr
        if notes is not None:
            moved = f" transposed from {data_layout} to {model_layout} and" if data_layout != model_layout and len(rest) == 3 else ""
            notes.append(f"{what} rows of shape {rest} were{moved} flattened row-major to the model's input of {size} values.")
        return rows.reshape(*head, size)
    hint = ""
    if image_model and math.prod(rest) == size and len(rest) == 3:
        other = "hwc" if data_layout == "chw" else "chw"
        if rest == _shape_in(input_shape, model_layout, other):
            hint = f"; the rows look {'channels-last' if other == 'hwc' else 'channels-first'}: pass --data-layout {other}"
    names = ("N", 2)[:lead]
    accepted = _fmt(_shape_in(input_shape, model_layout, data_layout) if image_model else input_shape, names)
    flat = _fmt((size,), names)
    accepted += f" or {flat}" if flat != accepted else ""
    layout_word = f" (--data-layout {data_layout})" if image_model else ""
    raise BadData(
        f"{what} has shape {tuple(arr.shape)}; the model's input shape {input_shape} needs {accepted}{layout_word}{hint}"
    )


def as_segments(
    arr: np.ndarray,
    input_shape: tuple[int, ...],
    data_layout: str = "chw",
    model_layout: str = "chw",
    notes: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Explicit segments (N, 2, *row shape) as start and end arrays; each end point is a row as
    `as_rows` accepts it."""
    if arr.ndim < 3 or arr.shape[1] != 2:
        raise BadData(
            f"segments file has shape {tuple(arr.shape)}; expected (N, 2, {', '.join(map(str, input_shape))})"
        )
    ends = as_rows(arr, input_shape, "segments", data_layout, model_layout, notes, lead=2)
    return ends[:, 0], ends[:, 1]


def random_pairs(n_rows: int, pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded pairs (i, j) of distinct rows."""
    if pairs and n_rows < 2:
        raise BadData(f"segments between data rows need at least 2 rows, found {n_rows}")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n_rows, size=pairs)
    j = (i + rng.integers(1, max(n_rows, 2), size=pairs)) % n_rows
    return i, j


def shift_images(image: np.ndarray, shifts: np.ndarray, layout: str) -> np.ndarray:
    """`image` translated by each (dx, dy) in pixels, bilinear, zero outside (Novak et al. 2018)."""
    chw = image if layout == "chw" else np.moveaxis(image, -1, 0)
    c, h, w = chw.shape
    x = torch.from_numpy(np.ascontiguousarray(chw)).to(torch.float64).unsqueeze(0).expand(len(shifts), c, h, w)
    s = torch.from_numpy(shifts).to(torch.float64)
    # output pixel (u, v) samples the input at (u - dx, v - dy); normalised for align_corners=True
    ys = torch.arange(h, dtype=torch.float64)
    xs = torch.arange(w, dtype=torch.float64)
    gy = ys.view(1, h, 1) - s[:, 1].view(-1, 1, 1)
    gx = xs.view(1, 1, w) - s[:, 0].view(-1, 1, 1)
    gx = 2 * gx / max(w - 1, 1) - 1
    gy = 2 * gy / max(h - 1, 1) - 1
    grid = torch.stack([gx.expand(-1, h, w), gy.expand(-1, h, w)], dim=-1)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True).numpy()
    return out if layout == "chw" else np.moveaxis(out, 1, -1)


def check_loop_input(input_shape, n_loops: int, model: str = "this model") -> None:
    """--loops shifts images: a model whose input is no (channels, height, width) image cannot
    have them, which `compare` says of either model before it measures the first."""
    if n_loops > 0 and len(input_shape) != 3:
        raise BadOption(f"--loops needs image inputs (channels, height, width); {model} takes inputs of shape {tuple(input_shape)}")


def translation_loops(
    rows: np.ndarray, n_loops: int, radius: float, steps: int, layout: str
) -> list[Loop]:
    """Each of the first `n_loops` images shifted along a circle of `radius` pixels at `steps` angles."""
    if n_loops <= 0:
        return []
    check_loop_input(rows.shape[1:], n_loops)
    angles = 2 * np.pi * np.arange(steps) / steps
    shifts = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    loops = []
    for r in range(min(n_loops, len(rows))):
        loops.append(Loop(vertices=shift_images(rows[r], shifts, layout), source_row=r))
    return loops


def synthetic_rows(input_shape: tuple[int, ...], n: int, seed: int) -> np.ndarray:
    """Standard Gaussian inputs, used only when no data is given (the result says so)."""
    rng = np.random.default_rng([seed, 1])
    return rng.standard_normal((n, *input_shape))


def check_size(arr: np.ndarray, what: str) -> None:
    if arr.size > MAX_PROBE_ELEMENTS:
        raise BadData(f"{what} holds {arr.size} values, more than regionaudit accepts ({MAX_PROBE_ELEMENTS})")


LARGE_VALUE = 100.0  # inputs beyond this are rarely what a trained network was fed
MIN_ROW_VALUES = 4  # rows this long or longer are checked for being one constant value


def suspicious(arr: np.ndarray, what: str, lead: int = 1) -> str | None:
    """One sentence naming what looks unprepared in a probe file (integer pixels, huge values,
    constant rows), or None. Such data is still analysed as given; the sentence warns the reader."""
    if not arr.size:
        return None
    found = []
    low, high = arr.min(), arr.max()  # no full-size temporaries: data files can be large
    if np.issubdtype(arr.dtype, np.integer):
        found.append(f"integer values ({arr.dtype}, {low}..{high}), e.g. unscaled pixels")
    peak = float(max(abs(float(low)), abs(float(high))))
    if peak > LARGE_VALUE:
        found.append(f"values as large as |x| = {peak:.6g}")
    rows = arr.reshape(math.prod(arr.shape[:lead]), -1)
    # a constant row of an image is blank; a point of 2 or 3 coordinates may well have equal ones
    constant = int((rows.min(axis=1) == rows.max(axis=1)).sum()) if rows.shape[1] >= MIN_ROW_VALUES else 0
    if constant:
        found.append(f"{constant} of {len(rows)} rows that are one constant value (e.g. blank images)")
    if not found:
        return None
    return f"{what} holds {'; '.join(found)}: it is analysed as given; check that it is scaled as the model's inputs."


def import_check_rows(data: str | Path | None, max_file_bytes: int | None = None) -> np.ndarray | None:
    """The first data rows, on which every import is checked too (random inputs alone may miss
    the input range the model is used in)."""
    rows = None if data is None else load_array(data, "data", head=IMPORT_CHECK_ROWS, max_file_bytes=max_file_bytes)
    return rows if rows is not None and rows.ndim >= 2 else None  # as_rows explains a bad shape


def segment_lengths(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean segment lengths; data whose differences overflow float64 is refused here,
    before any analysis, since nothing measured along such segments would mean anything.

    Each difference is divided by its largest element before squaring: squares of differences
    near 1e-300 underflow to zero (a length of 0 for two distinct ends), and those of differences
    near 1e200 overflow, where the length itself is a plain float64."""
    with np.errstate(over="ignore", invalid="ignore"):
        diff = (b - a).reshape(len(a), int(np.prod(a.shape[1:])))
        scale = np.abs(diff).max(axis=1, initial=0.0)
        unit = diff / np.where((scale > 0) & np.isfinite(scale), scale, 1.0)[:, None]
        lengths = scale * np.linalg.norm(unit, axis=1)
    if not np.isfinite(lengths).all():
        raise BadData("segment lengths overflow float64 on these inputs; check the data's scale")
    return lengths


def build_probes(input_shape: tuple[int, ...], opts: Options) -> Probes:
    """Probes from the files given, or from seeded Gaussian rows when none is.

    Explicit `--segments` / `--points` keep their file order and take the place of what data rows
    would give; an option that ends up unused is listed in `unused`, so the settings say what ran.
    """
    hashes: dict[str, str] = {}
    warnings: list[str] = []

    def read(key: str) -> np.ndarray | None:
        path = getattr(opts, key)
        if path is None:
            return None
        hashes[key] = sha256_of(path, key)
        arr = load_array(path, key, as_float=False, max_file_bytes=opts.max_file_size)
        warning = suspicious(arr, f"{key} file {path}", lead=2 if key == "segments" else 1)
        if warning:
            warnings.append(warning)
        return arr.astype(np.float64, copy=False)

    rows, pts, segs = read("data"), read("points"), read("segments")
    for arr, what in ((rows, "data"), (pts, "points"), (segs, "segments")):
        if arr is not None:
            check_size(arr, what)
    synthetic = rows is None and pts is None and segs is None
    unused: list[str] = []
    if synthetic:
        unused.append("data_layout")  # no array was read, so the layout of arrays changed nothing
        if not opts.loops:
            unused.append("layout")
    source = "data"
    data_rows = None
    notes: list[str] = []
    layouts = (opts.data_layout, opts.layout)
    if rows is not None:
        rows = as_rows(rows, input_shape, "data", *layouts, notes)
        data_rows = len(rows)
    elif synthetic:
        rows = synthetic_rows(input_shape, max(SYNTHETIC_ROWS, opts.max_points), opts.seed)
        source = "synthetic Gaussian"
    none = np.zeros((0, *input_shape))
    parts: list[str] = []
    pair_rows = None

    if segs is not None:
        pair = as_segments(segs, input_shape, *layouts, notes)
        parts.append(f"{len(pair[0])} segments from {Path(opts.segments).name}")  # (the settings hold its path)
    elif rows is not None:
        i, j = random_pairs(len(rows), opts.pairs, opts.seed)
        pair = rows[i], rows[j]
        pair_rows = (i, j) if opts.data is not None else None  # for --labels
        parts.append(f"{len(i)} segments between seeded random pairs of {source} rows")
        repeats = len(i) - len({(min(p, q), max(p, q)) for p, q in zip(i.tolist(), j.tolist())})
        if repeats:
            distinct = len(rows) * (len(rows) - 1) // 2
            notes.append(f"{repeats} of the {len(i)} segments join{'s' if repeats == 1 else ''} a pair of rows drawn before (pairs are drawn "
                         f"independently; the {len(rows)} {source} rows make {distinct:,} distinct pair{'s' if distinct != 1 else ''}): the "
                         "summaries count such a segment each time.")
    else:
        pair = none, none
    if segs is not None or rows is None:
        unused.append("pairs")

    if pts is not None:
        at = as_rows(pts, input_shape, "points", *layouts, notes)
        parts.append(f"{len(at)} points from {Path(opts.points).name}")
        unused.append("max_points")
    elif rows is not None:
        at = rows[: opts.max_points]
        parts.append(f"{len(at)} points (the first {source} rows)")
    else:
        at = none
        unused.append("max_points")

    probes = Probes(
        segments=pair,
        points=at,
        synthetic=synthetic,
        notes=notes,
        warnings=warnings,
        hashes=hashes,
        data_rows=data_rows,
        unused=unused,
        pair_rows=pair_rows,
        rows=rows,
    )
    if opts.labels is not None:
        probes.hashes["labels"] = sha256_of(opts.labels, "labels")
    if opts.loops:
        images = rows if rows is not None else at
        if not len(images):
            raise BadOption("--loops needs images to shift: give --data (or --points)")
        probes.loops = translation_loops(images, opts.loops, opts.loop_radius, opts.loop_steps, opts.layout)
        parts.append(f"{len(probes.loops)} closed translation loops (radius {opts.loop_radius} px, {opts.loop_steps} shifts)")
        if len(probes.loops) < opts.loops:
            probes.notes.append(f"--loops {opts.loops} asked for more loops than there are images: {len(probes.loops)} were measured.")
    probes.description = "; ".join(parts)
    return probes
