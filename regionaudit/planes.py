"""The plane of a 2-D slice (DESIGN.md, "2-D slices"): through three points, or the input space
itself for a model whose input is 2-D.

Through p0, p1, p2: axes e1 = (p1 - p0) / |p1 - p0| and e2 = (p2 - p0) orthonormalised against e1,
origin at the triangle's circumcentre, the square of half-width `scale` x circumradius around it
(Hanin & Rolnick 2019a, section 3 of the appendix; Novak et al. 2018). Plain numpy in float64:
the same seed and files give the same plane on every machine.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np
import torch

from regionaudit.analysis.slices import Plane
from regionaudit.errors import BadData, BadOption
from regionaudit.ir import Network

COLLINEAR = 1e-9  # relative height of a triangle below which its points count as collinear
ROUNDING_ULPS = 64  # ... or below this many units of rounding of the points' own float type
MARGIN = 0.10  # margin around the data's range, for 2-D inputs
CANDIDATE_ROWS = 1024  # rows whose classes are looked at when picking the default points


@dataclass
class SlicePlane:
    """A plane with the three points it was built from (or that are marked on it)."""

    plane: Plane
    points: np.ndarray  # (3, D) input-space points
    uv: np.ndarray  # (3, 2) their plane coordinates
    rows: list[int] | None  # data rows they came from, None for --slice-points
    source: str  # "data", "synthetic", "file"
    half_width: float | None  # scale x circumradius (None for 2-D inputs)
    input_plane: bool  # the input space itself (2-D inputs)


def _frame(points: np.ndarray, tolerance: float = COLLINEAR) -> tuple[np.ndarray, np.ndarray] | None:
    """Orthonormal e1, e2 of three flat points (3, D), or None when they are collinear: the
    triangle's height at most `tolerance` times its longer side from p0."""
    p0, p1, p2 = points
    d1, d2 = p1 - p0, p2 - p0
    n1 = float(np.linalg.norm(d1))
    if n1 == 0 or not math.isfinite(n1):
        return None
    e1 = d1 / n1
    w = d2 - (d2 @ e1) * e1
    n2 = float(np.linalg.norm(w))
    if n2 <= tolerance * max(n1, float(np.linalg.norm(d2))) or not math.isfinite(n2):
        return None
    return e1, w / n2


def collinear(points: np.ndarray) -> bool:
    """Whether three points span no plane, to within the rounding of their own type: points
    given in float32 (a, 2a, 3a, say) are off a line by its rounding alone, and a plane through
    that noise would have a box millions of times their size."""
    tolerance = COLLINEAR
    if np.issubdtype(points.dtype, np.floating):
        tolerance = max(COLLINEAR, ROUNDING_ULPS * float(np.finfo(points.dtype).eps))
    return _frame(points.reshape(3, -1).astype(np.float64), tolerance) is None  # (uint8 differences would wrap)


def plane_through(points: np.ndarray, scale: float) -> tuple[Plane, np.ndarray, float]:
    """The plane through three points (3, D), its box, and the points' plane coordinates."""
    flat = points.reshape(3, -1).astype(np.float64)
    frame = _frame(flat)
    if frame is None:
        raise BadData("the three slice points are collinear (or two are equal): they span no plane")
    e1, e2 = frame
    # plane coordinates with p0 at the origin: p1 = (d, 0), p2 = (x2, y2)
    d = float((flat[1] - flat[0]) @ e1)
    x2, y2 = float((flat[2] - flat[0]) @ e1), float((flat[2] - flat[0]) @ e2)
    cx = d / 2
    cy = (x2 * x2 + y2 * y2 - d * x2) / (2 * y2)
    radius = math.hypot(cx, cy)
    half = scale * radius
    origin = flat[0] + cx * e1 + cy * e2
    uv = np.array([[-cx, -cy], [d - cx, -cy], [x2 - cx, y2 - cy]])
    plane = Plane(torch.from_numpy(origin), torch.from_numpy(np.stack([e1, e2])), (-half, half, -half, half))
    return plane, uv, half


def data_box(rows: np.ndarray) -> tuple[float, float, float, float]:
    """The range of 2-D rows plus a 10 % margin on each side (1 where the range is a point)."""
    flat = rows.reshape(len(rows), 2).astype(np.float64)
    lo, hi = flat.min(0), flat.max(0)
    span = hi - lo
    pad = np.where(span > 0, MARGIN * span, 1.0)
    return float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1])


def classes_of(network: Network, x: np.ndarray) -> np.ndarray:
    """Predicted classes of rows x (`predicted`)."""
    return predicted(network.forward(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))).cpu()).numpy()


def predicted(out: torch.Tensor) -> torch.Tensor:
    """The predicted class of each row of outputs (N, C): the argmax, or for a single output f
    its sign, class 1 where f > 0 (as the slice's decision boundary takes it)."""
    out = out.reshape(out.shape[0], -1)
    if out.shape[1] == 1:
        return (out[:, 0] > 0).long()
    return out.argmax(1)


class NoSpanningRows(BadData):
    """The data holds no three rows that span a plane, so no default slice runs through it."""


def default_points(network: Network, rows: np.ndarray, seed: int) -> list[int]:
    """Three seeded rows, with three different predicted classes when the rows allow, and never
    collinear: rows are taken in a seeded order, each one kept when it adds a new class (then,
    failing that, any row) and does not make the three collinear."""
    n = len(rows)
    if n < 3:
        raise NoSpanningRows(f"the data has {n} row{'s' if n != 1 else ''}, and a slice through data needs three that span a plane")
    order = np.random.default_rng([seed, 2]).permutation(n)[:CANDIDATE_ROWS]
    flat = rows.reshape(n, -1)
    classes = classes_of(network, rows[order])
    for distinct in (True, False):
        picked: list[int] = []
        seen: set[int] = set()
        for k, r in enumerate(order):
            if distinct and int(classes[k]) in seen:
                continue
            trial = picked + [int(r)]
            if len(trial) == 2 and not np.any(flat[trial[0]] != flat[trial[1]]):
                continue
            if len(trial) == 3 and collinear(flat[trial]):
                continue
            picked = trial
            seen.add(int(classes[k]))
            if len(picked) == 3:
                return picked
    raise NoSpanningRows("no three data rows span a plane (every triple is collinear)")


def build_plane(
    network: Network,
    rows: np.ndarray,
    source: str,
    seed: int,
    scale: float,
    box: tuple[float, float, float, float] | None,
    points: np.ndarray | None,
) -> SlicePlane:
    """The slice's plane: `points` (3, *input_shape) or three seeded rows; for a 2-D input, the
    input space over `box` or the rows' range plus a margin."""
    if not (math.isfinite(scale) and scale > 0):
        raise BadOption(f"--slice-scale must be a positive number, got {scale}")
    two_d = math.prod(network.input_shape) == 2
    if box is not None and not two_d:
        raise BadOption(
            f"--slice-box applies to models with a 2-D input; this model's input has shape {tuple(network.input_shape)}"
        )
    if box is not None and not (all(math.isfinite(b) for b in box) and box[1] > box[0] and box[3] > box[2]):
        raise BadOption(f"--slice-box needs XMIN < XMAX and YMIN < YMAX, finite, got {' '.join(map(str, box))}")
    picked: list[int] | None = None
    if points is not None:
        if collinear(points):
            raise BadData("--slice-points are collinear (or two are equal): three points must span a plane")
        pts = points.reshape(3, -1).astype(np.float64)
        source = "file"
    else:
        try:
            picked = default_points(network, rows, seed)
        except NoSpanningRows:
            if not two_d:
                raise
            picked = list(range(min(3, len(rows))))  # (a 2-D input is sliced in its own plane: the rows only mark it)
        pts = rows.reshape(len(rows), -1)[picked].astype(np.float64)
    if two_d:
        b = box if box is not None else data_box(rows if points is None else np.concatenate([rows.reshape(-1, 2), pts]))
        if not (b[1] - b[0]) * (b[3] - b[2]) >= sys.float_info.min:  # (areas, and regions per area, are measured)
            what = "--slice-box" if box is not None else "the data's range"
            raise BadOption(f"{what} {' '.join(f'{v:g}' for v in b)} is too small: its area underflows float64")
        plane = Plane(torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64), tuple(map(float, b)))
        return SlicePlane(plane, pts, pts.copy(), picked, source, None, True)
    plane, uv, half = plane_through(pts, scale)
    return SlicePlane(plane, pts, uv, picked, source, half, False)
