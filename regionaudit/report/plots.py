"""Plots as inline SVG strings, drawn with matplotlib's object API (no pyplot, no global state).

Each function takes plain numbers and returns an SVG string, or `None` when there is nothing to
draw (the caller then prints a sentence instead). SVGs are deterministic (fixed hash salt, no
date) and their internal ids are unique per plot, so many of them can sit in one HTML page.
"""

from __future__ import annotations

import io
import math
import re
from xml.sax.saxutils import escape as xml_escape
from collections.abc import Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from regionaudit.report import formatting as show

FIGSIZE = (5.5, 3.2)

BLUE = "#2f5d8a"
ORANGE = "#d9822b"
GREEN = "#3c8d5a"
RED = "#b8413a"
GREY = "#5f6b77"
LIGHT = "#e6ebf0"

_RC = {
    "font.family": ["DejaVu Sans", "sans-serif"],
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 9,
    "axes.labelcolor": "#333333",
    "axes.edgecolor": "#9aa5b1",
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": LIGHT,
    "grid.linewidth": 0.8,
    "xtick.color": "#555555",
    "ytick.color": "#555555",
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "svg.fonttype": "none",
    "text.usetex": False,
}


def plain(s) -> str:
    """Text that matplotlib draws literally (no mathtext from `$` in model-controlled names)."""
    return str(s).replace("$", r"\$")


def _figure(size=FIGSIZE) -> Figure:
    fig = Figure(figsize=size)
    FigureCanvasSVG(fig)
    fig.set_layout_engine("constrained", h_pad=0.06, w_pad=0.06)
    return fig


def _to_svg(fig: Figure, plot_id: str, title: str, tight: bool = False) -> str:
    """The figure as inline SVG; `tight` crops it to what is drawn (an equal-aspect axes, which the
    constrained layout places after it has reserved room for the labels, can push one off the page)."""
    buf = io.StringIO()
    with mpl.rc_context({**_RC, "svg.hashsalt": f"regionaudit-{plot_id}", "svg.id": f"plot-{plot_id}"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
                    **({"bbox_inches": "tight", "pad_inches": 0.08} if tight else {}))
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]  # drop the XML prolog and DOCTYPE (it names an external DTD)
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r"<style[^>]*>.*?</style>\s*", "", svg, flags=re.S)  # global `*` rule; report.css has it
    # unique ids per plot: matplotlib names clip paths and markers by a salted hash, and glyphs/
    # patches by fixed names; prefix all of them with the plot id.
    ids = set(re.findall(r'\bid="([^"]+)"', svg)) - {f"plot-{plot_id}"}
    if ids:
        pattern = re.compile(r'(\bid="|href="#|url\(#)(' + "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True)) + r')(?=[")])')
        svg = pattern.sub(lambda m: f"{m.group(1)}{plot_id}-{m.group(2)}", svg)
    svg = svg.replace("<svg ", f'<svg role="img" aria-labelledby="{plot_id}-title" ', 1)
    opening = svg.index(">") + 1
    svg = svg[:opening] + f'\n<title id="{plot_id}-title">{xml_escape(title)}</title>' + svg[opening:]
    return svg.strip()


def _draw(plot_id: str, draw, title: str, size=FIGSIZE, tight: bool = False) -> str:
    with mpl.rc_context({**_RC, "svg.hashsalt": f"regionaudit-{plot_id}"}):
        fig = _figure(size)
        draw(fig)
        return _to_svg(fig, plot_id, title, tight)


def _finite(values) -> np.ndarray:
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    return arr[np.isfinite(arr)]


def finite_pairs(xs: Sequence, ys: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """The (x, y) items where both are finite numbers, as two arrays (scatter plots skip the rest)."""
    pairs = [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)]
    return np.array([p[0] for p in pairs], dtype=float), np.array([p[1] for p in pairs], dtype=float)


def _median_line(ax, arr: np.ndarray, fmt) -> None:
    med = float(np.median(arr))
    ax.axvline(med, color=ORANGE, lw=1.4, ls="--", label=f"median {fmt(med)}")
    ax.legend(loc="best")


def _n_bins(n: int) -> int:
    return min(40, max(8, int(math.sqrt(n) * 2)))


def _int_or_auto_bins(arr: np.ndarray):
    """Bins of whole-number width centred on integers (no empty gaps between integer values)."""
    lo, hi = float(arr.min()), float(arr.max())
    if not np.allclose(arr, np.round(arr)):
        return _n_bins(len(arr))
    lo, hi = math.floor(lo), math.ceil(hi)
    width = max(1, math.ceil((hi - lo + 1) / _n_bins(len(arr))))
    return np.arange(lo - 0.5, hi + width + 0.5, width)


def histogram(
    plot_id: str,
    values: Sequence[float | None],
    title: str,
    xlabel: str,
    fmt=show.num,
    color: str = BLUE,
    integer: bool = False,
) -> str | None:
    arr = _finite(values)
    if arr.size == 0:
        return None

    def draw(fig):
        ax = fig.add_subplot()
        bins = _int_or_auto_bins(arr) if integer else _n_bins(len(arr))
        if arr.min() == arr.max() and not integer:
            bins = 1
        ax.hist(arr, bins=bins, color=color, edgecolor="white", linewidth=0.5)
        _median_line(ax, arr, fmt)
        ax.set_title(plain(title))
        ax.set_xlabel(plain(xlabel))
        ax.set_ylabel("segments")
        ax.yaxis.get_major_locator().set_params(integer=True)

    return _draw(plot_id, draw, title)


def log_histogram(
    plot_id: str, values: Sequence[float | None], title: str, xlabel: str, ylabel: str = "points", color: str = BLUE
) -> str | None:
    """Histogram on a log x axis with log-spaced bins (Hanin & Rolnick 2019a, Fig. 3 style)."""
    arr = _finite(values)
    pos = arr[arr > 0]
    if pos.size == 0:
        return None
    zeros = int((arr <= 0).sum())

    def draw(fig):
        ax = fig.add_subplot()
        lo, hi = float(pos.min()), float(pos.max())
        if lo == hi:
            lo, hi = lo / 1.5, hi * 1.5
        n_bins = _n_bins(len(pos))
        bins = np.logspace(math.log10(lo), math.log10(hi), n_bins + 1)
        ax.hist(pos, bins=bins, color=color, edgecolor="white", linewidth=0.5)
        ax.set_xscale("log")
        if hi / lo >= 10:  # whole decades are labelled; minor labels are clutter (and slow)
            ax.xaxis.set_minor_formatter(NullFormatter())
        _median_line(ax, pos, show.num)
        ax.set_title(plain(title))
        ax.set_xlabel(plain(xlabel + " (log scale)"))
        ax.set_ylabel(ylabel)
        ax.yaxis.get_major_locator().set_params(integer=True)
        if zeros:
            ax.text(0.01, 0.97, f"{zeros} at exactly 0 (not shown)", transform=ax.transAxes, va="top", fontsize=8, color=GREY)

    return _draw(plot_id, draw, title)


def label_axes(ax, xlabel: str, ylabel: str, xs: np.ndarray | None = None, ys: np.ndarray | None = None) -> None:
    """The axes' labels; an axis whose values (xs, ys) are positive and span more than 100x is on
    a log scale, and its label says so."""
    for arr, set_scale, label, set_label in ((xs, ax.set_xscale, xlabel, ax.set_xlabel), (ys, ax.set_yscale, ylabel, ax.set_ylabel)):
        log = arr is not None and arr.size > 0 and arr.min() > 0 and arr.max() / arr.min() > 100
        if log:
            set_scale("log")
        set_label(plain(label + (" (log scale)" if log else "")))


def ecdf(plot_id: str, values: Sequence[float | None], title: str, xlabel: str, color: str = BLUE) -> str | None:
    arr = np.sort(_finite(values))
    if arr.size == 0:
        return None

    def draw(fig):
        ax = fig.add_subplot()
        y = np.arange(1, arr.size + 1) / arr.size
        x = np.concatenate([[arr[0]], arr])
        ax.step(x, np.concatenate([[0.0], y]), where="post", color=color, lw=1.6)
        pos = arr[arr > 0]
        if pos.size == arr.size and pos.size > 1 and pos.max() / pos.min() > 100:
            ax.set_xscale("log")
            xlabel_full = xlabel + " (log scale)"
        else:
            xlabel_full = xlabel
        med = float(np.median(arr))
        ax.axvline(med, color=ORANGE, lw=1.4, ls="--", label=f"median {show.num(med)}")
        ax.axhline(0.5, color=GREY, lw=0.6, ls=":")
        ax.legend(loc="lower right")
        ax.set_ylim(0, 1.02)
        ax.set_title(plain(title))
        ax.set_xlabel(plain(xlabel_full))
        ax.set_ylabel("fraction of segments ≤ x")

    return _draw(plot_id, draw, title)


def scatter(
    plot_id: str, xs: Sequence[float | None], ys: Sequence[float | None], title: str, xlabel: str, ylabel: str
) -> str | None:
    x, y = finite_pairs(xs, ys)
    if not len(x):
        return None

    def draw(fig):
        ax = fig.add_subplot()
        ax.scatter(x, y, s=24, color=BLUE, alpha=0.8, edgecolors="white", linewidths=0.5)
        label_axes(ax, xlabel, ylabel, x, y)
        ax.set_title(plain(title))

    return _draw(plot_id, draw, title)


def hbar(plot_id: str, labels: Sequence[str], values: Sequence[float], title: str, xlabel: str, max_bars: int = 40) -> str | None:
    """Horizontal bars in the given order, top to bottom (long layer names stay readable)."""
    if not labels:
        return None
    labels = [str(s) for s in labels]
    values = [float(v) for v in values]
    hidden = 0
    if len(labels) > max_bars:
        hidden = len(labels) - max_bars
        rest = sum(values[max_bars - 1 :])
        labels = labels[: max_bars - 1] + [f"{hidden + 1} more layers"]
        values = values[: max_bars - 1] + [rest]
    n = len(labels)
    height = min(9.0, max(2.0, 0.9 + 0.24 * n))

    def draw(fig):
        ax = fig.add_subplot()
        pos = np.arange(n)
        ax.barh(pos, values, color=BLUE, height=0.7)
        ax.set_yticks(pos, [plain(_short(s, 32)) for s in labels])
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        vmax = max(values) if values else 0
        for p, v in zip(pos, values):
            ax.text(v + vmax * 0.01, p, f"{v:,.0f}", va="center", fontsize=7.5, color=GREY)
        ax.set_xlim(0, vmax * 1.12 if vmax > 0 else 1)
        ax.set_title(plain(title))
        ax.set_xlabel(plain(xlabel))

    return _draw(plot_id, draw, title, size=(FIGSIZE[0], height))


def paired_histogram(plot_id: str, values: Sequence[float | None], title: str, xlabel: str, integer: bool) -> str | None:
    """Differences B − A: the negative ones in blue bars, the positive ones in orange, the ties
    (exactly 0) in a grey bar of their own (`paired_groups`)."""
    arr = _finite(values)
    with np.errstate(over="ignore"):
        if arr.size == 0 or not np.isfinite(arr.max() - arr.min()):  # (a span past float64: no axis to draw on)
            return None
    groups = paired_groups(arr, integer)
    tie_width = 1.0 if integer else (float(arr.max() - arr.min()) / (4 * _n_bins(len(arr))) or 1.0)

    def draw(fig):
        ax = fig.add_subplot()
        for v, edges, colour in groups:
            if colour == "tie":
                ax.bar([0.0], [v.size], width=tie_width, color="#9aa5b1", edgecolor="white", linewidth=0.5)
            else:
                ax.hist(v, bins=edges, color=colour, edgecolor="white", linewidth=0.5)
        ax.axvline(0, color="#333333", lw=1.0)
        ax.set_title(plain(title))
        ax.set_xlabel(plain(xlabel))
        ax.set_ylabel("segments")
        ax.yaxis.get_major_locator().set_params(integer=True)

    return _draw(plot_id, draw, title)


def paired_groups(arr: np.ndarray, integer: bool) -> list[tuple[np.ndarray, np.ndarray | None, str]]:
    """(values, bin edges, colour) of the negative differences (BLUE), the ties ("tie", no edges)
    and the positive ones (ORANGE), each side binned over its own range: every value falls in a
    bin of its side (integers in bins centred on them, no bar reaching 0)."""
    out = []
    for v, colour in ((arr[arr < 0], BLUE), (arr[arr == 0], "tie"), (arr[arr > 0], ORANGE)):
        if v.size == 0:
            continue
        if colour == "tie":
            out.append((v, None, colour))
            continue
        lo, hi = float(v.min()), float(v.max())
        k = _n_bins(len(arr))
        if integer:  # (bins counted from the end nearest 0, so that none reaches past ±0.5)
            width = max(1, math.ceil((hi - lo + 1) / k))
            steps = width * np.arange(math.ceil((hi - lo + 1) / width) + 1)
            edges = (hi + 0.5 - steps)[::-1] if colour == BLUE else lo - 0.5 + steps
        else:
            with np.errstate(all="ignore"):
                edges = np.linspace(lo, hi, k + 1) if hi > lo else np.array([lo, hi])
            if not (np.all(np.isfinite(edges)) and np.all(np.diff(edges) > 0)):
                edges = np.array([np.nextafter(lo, -np.inf), np.nextafter(hi, np.inf)])
        out.append((v, edges, colour))
    return out


def _short(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"
