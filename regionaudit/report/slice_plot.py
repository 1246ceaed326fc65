"""The 2-D slice's picture (Hanin & Rolnick 2019a Fig. 1; SplineCam): regions filled, region
boundaries thin and coloured by the kink node that made them, the decision boundary thick and
black, the three points marked with their class. matplotlib's object API, as `plots.py`.

Above `RASTER_ABOVE` regions the fills and thin boundaries are rasterised inside the SVG (the
decision boundary, points and text stay vector), so the report stays small enough to open. The
regions of one colour are one compound path, and so are the boundaries of one layer: matplotlib
builds and draws a collection path by path, and one path per region and per edge took 5 s for a
56 000-region slice.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.path import Path as MplPath

from regionaudit.errors import BadOption
from regionaudit.report import plots
from regionaudit.report.formatting import counted, num
from regionaudit.slice_result import SliceDrawing, SliceResult

RASTER_ABOVE = 3000
PALETTE = 64  # region colours: neighbouring regions share one about once in PALETTE
SIZE = (7.2, 4.9)
MARKERS = ("o", "s", "^")


def check_picture_path(path: str) -> None:
    if Path(path).suffix.lower() not in (".png", ".svg"):
        raise BadOption(f"--slice-png must end in .png or .svg, got {Path(path).name}")


def _region_colors(n: int) -> np.ndarray:
    """Light colours, seeded, spread over hue so that neighbours rarely look alike."""
    rng = np.random.default_rng(0)
    hue = rng.random(n)
    sat = rng.uniform(0.12, 0.38, n)
    val = rng.uniform(0.93, 1.0, n)
    return mpl.colors.hsv_to_rgb(np.stack([hue, sat, val], 1))


def _compound(pieces: list[np.ndarray]) -> MplPath:
    """One path of closed polygons (each an (n_i, 2) array; at least one) as subpaths."""
    closed = [np.vstack([p, p[:1]]) for p in pieces]
    lengths = np.asarray([len(p) for p in closed])
    codes = np.full(int(lengths.sum()), MplPath.LINETO, dtype=MplPath.code_type)
    ends = np.cumsum(lengths)
    codes[ends - lengths] = MplPath.MOVETO
    codes[ends - 1] = MplPath.CLOSEPOLY
    return MplPath(np.concatenate(closed), codes)


def _segments(edges: np.ndarray) -> MplPath:
    """One path of line segments (E, 2, 2), each its own subpath."""
    codes = np.tile(np.asarray([MplPath.MOVETO, MplPath.LINETO], dtype=MplPath.code_type), len(edges))
    return MplPath(edges.reshape(-1, 2), codes)


CLASS_KEY = 12  # classes named in the key of a picture filled by class


def _class_colors(n_classes: int) -> np.ndarray:
    base = mpl.colormaps["tab10" if n_classes <= 10 else "tab20"]
    rgb = np.asarray([base(k % base.N)[:3] for k in range(max(n_classes, 1))])
    return 0.4 * rgb + 0.6  # light tints: the boundaries stay readable on top


def _layer_colors(n: int) -> np.ndarray:
    cmap = mpl.colormaps["viridis"]
    return np.asarray([cmap(0.05 + 0.8 * k / max(n - 1, 1))[:3] for k in range(n)])


def _title(sl: SliceResult) -> str:
    return f"2-D slice: {counted(sl.regions, 'region')}" + (" (a lower bound)" if sl.truncated else "")


def draw(fig: Figure, sl: SliceResult, d: SliceDrawing) -> None:
    ax = fig.add_subplot()
    n = len(d.polygons)
    raster = n > RASTER_ABOVE
    if raster:
        fig.set_dpi(150)  # the resolution of the rasterised fills inside an SVG
    n_classes = int(max([*d.classes.tolist(), *d.point_classes, 1])) + 1
    if d.color == "class":
        group, faces = np.asarray(d.classes, dtype=int), _class_colors(n_classes)
    else:
        group, faces = np.random.default_rng(1).integers(0, PALETTE, n), _region_colors(PALETTE)
    members = [[] for _ in range(len(faces))]
    for poly, g in zip(d.polygons, group.tolist()):
        members[g].append(poly)
    used = [g for g in range(len(faces)) if members[g]]
    polys = PathCollection([_compound(members[g]) for g in used], facecolors=faces[used], edgecolors="none",
                           linewidths=0, antialiased=False)
    polys.set_rasterized(raster)
    ax.add_collection(polys)
    handles = []
    layers = _layer_colors(len(d.layer_names))
    inner = d.edge_layers >= 0
    if d.layer_names and inner.any():
        lw = 0.6 if n < 500 else 0.35 if n < RASTER_ABOVE else 0.2
        drawn = sorted(set(d.edge_layers[inner].tolist()))
        lines = PathCollection([_segments(d.edges[d.edge_layers == k]) for k in drawn], facecolors="none",
                               edgecolors=layers[drawn], linewidths=lw)
        lines.set_rasterized(raster)
        ax.add_collection(lines)
        handles += [Line2D([], [], color=layers[k], lw=1.6, label=plots.plain(_short(d.layer_names[k]))) for k in drawn]
    elif len(d.edges):  # polygons read back from JSON: no layer of origin
        lines = PathCollection([_segments(d.edges)], facecolors="none", edgecolors="#6b6b6b", linewidths=0.3)
        lines.set_rasterized(raster)
        ax.add_collection(lines)
    if len(d.decision):
        ax.add_collection(LineCollection(d.decision, colors="black", linewidths=1.8, capstyle="round", zorder=3))
        length = sl.decision_boundary.get("length")
        label = "decision boundary" + (f"\n(length {num(length)})" if length is not None else "")
        handles.append(Line2D([], [], color="black", lw=1.8, label=label))
    if d.color == "class":  # the key of the fills (tab20's colours repeat past 20 classes: then the key says so)
        present = sorted(set(np.asarray(d.classes, dtype=int).tolist()))
        shown = present[:CLASS_KEY]
        handles += [Patch(facecolor=faces[c], edgecolor="#6b6b6b", linewidth=0.4, label=f"class {c}") for c in shown]
        more = [f"… {len(present) - len(shown)} more classes"] if len(present) > len(shown) else []
        more += ["(colours repeat every 20 classes)"] if n_classes > 20 else []
        handles += [Patch(facecolor="none", edgecolor="none", label=text) for text in more]
    for k, ((u, v), c) in enumerate(zip(d.points, d.point_classes)):
        ax.scatter([u], [v], s=46, marker=MARKERS[k % 3], color="white", edgecolors="black", linewidths=1.3, zorder=4)
        ax.annotate(
            f"p{k}: class {c}", (u, v), xytext=(6, 6), textcoords="offset points", fontsize=8, zorder=5,
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8},
        )
    umin, umax, vmin, vmax = d.box
    ax.set_xlim(umin, umax)
    ax.set_ylim(vmin, vmax)
    ax.set_aspect("equal")
    ax.grid(False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(True)
    if d.input_plane:
        ax.set_xlabel("input 1")
        ax.set_ylabel("input 2")
    else:
        ax.set_xlabel("e1: along p1 − p0 (input units, from the circumcentre)")
        ax.set_ylabel("e2")
    ax.set_title(plots.plain(_title(sl)))
    if handles:
        # a figure legend "outside": the constrained layout makes room for it
        title = "boundary made by" if d.color != "class" else "boundary made by; fill: predicted class"
        fig.legend(handles=handles, loc="outside right upper", fontsize=7.5, title=title, title_fontsize=7.5, frameon=False)


def _short(s: str, n: int = 28) -> str:
    return s if len(s) <= n else "…" + s[-(n - 1):]


def report_svg(sl: SliceResult | None) -> str | None:
    """Inline SVG for the report, or None when there is no drawing (polygons not kept)."""
    d = sl.drawing if sl is not None else None
    if d is None or not d.polygons:
        return None
    return plots._draw("slice", lambda fig: draw(fig, sl, d), _title(sl), size=SIZE, tight=True)


def standalone_picture(sl: SliceResult | None, path: str) -> bytes:
    """The picture as PNG (200 dpi) or SVG bytes, for `--slice-png`."""
    d = sl.drawing if sl is not None else None
    if d is None or not d.polygons:
        raise BadOption("there is no 2-D slice to draw")
    if Path(path).suffix.lower() == ".svg":
        return report_svg(sl).encode("utf-8")
    with mpl.rc_context(plots._RC):
        fig = Figure(figsize=SIZE)
        FigureCanvasAgg(fig)
        fig.set_layout_engine("constrained")
        draw(fig, sl, d)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=200, bbox_inches="tight", pad_inches=0.08, metadata={"Software": None})
    return buf.getvalue()
