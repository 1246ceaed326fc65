"""Probes: where the analysis looks (segments between data rows, closed loops, points).

Everything here is plain numpy in float64 and depends only on the seed and the inputs, so the same
seed and the same files give the same probes on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from regionaudit.errors import BadData, BadOption

MAX_PROBE_ELEMENTS = 2**31  # an absurd probe file is refused before anything is allocated for it


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
    rows: np.ndarray | None = None  # the data (or synthetic) rows the probes came from


def as_rows(arr: np.ndarray, input_shape: tuple[int, ...], what: str) -> np.ndarray:
    """Rows as (N, *input_shape): exact shape, flat rows, or any row shape with the same size.

    Row-major reshaping is what a user means when digits saved as (N, 1, 8, 8) feed an MLP
    over 64 features; a row of a different size is refused.
    """
    size = math.prod(input_shape)
    if arr.ndim >= 1 and tuple(arr.shape[1:]) == tuple(input_shape):
        return arr
    if arr.ndim >= 2 and math.prod(arr.shape[1:]) == size:
        return arr.reshape(arr.shape[0], *input_shape)
    raise BadData(
        f"{what} has shape {tuple(arr.shape)}; expected (N, {', '.join(map(str, input_shape))}) "
        f"or (N, {size}) for the model's input shape {tuple(input_shape)}"
    )


def as_segments(arr: np.ndarray, input_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Explicit segments (N, 2, *input_shape) or (N, 2, prod) as start and end arrays."""
    size = math.prod(input_shape)
    if arr.ndim >= 2 and arr.shape[1] == 2 and (tuple(arr.shape[2:]) == tuple(input_shape) or arr.shape[2:] == (size,)):
        arr = arr.reshape(arr.shape[0], 2, *input_shape)
        return arr[:, 0], arr[:, 1]
    raise BadData(
        f"segments file has shape {tuple(arr.shape)}; expected (N, 2, {', '.join(map(str, input_shape))})"
    )


def random_pairs(n_rows: int, pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded pairs (i, j) of distinct rows."""
    if pairs < 0:
        raise BadOption(f"--pairs must be >= 0, got {pairs}")
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


def translation_loops(
    rows: np.ndarray, n_loops: int, radius: float, steps: int, layout: str
) -> list[Loop]:
    """Each of the first `n_loops` images shifted along a circle of `radius` pixels at `steps` angles."""
    if n_loops <= 0:
        return []
    if rows.ndim != 4:
        raise BadOption(f"--loops needs image inputs (channels, height, width); this model's input has shape {rows.shape[1:]}")
    if layout not in ("chw", "hwc"):
        raise BadOption(f"--layout must be chw or hwc, got {layout!r}")
    if steps < 3:
        raise BadOption(f"--loop-steps must be at least 3, got {steps}")
    if not radius > 0:
        raise BadOption(f"--loop-radius must be positive, got {radius}")
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
