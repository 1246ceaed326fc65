"""Plots of the reference frame: trained against the same architecture at initialisation.

Each plot shows something no other plot shows; where the init reference exists it is overlaid in
grey (dashed or hollow), the trained model in colour. Functions take plain numbers and return an
SVG string, or None when there is nothing to draw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from regionaudit.report.plots import BLUE, FIGSIZE, GREY, ORANGE, _draw, _finite, _short, finite_pairs, label_axes, plain

INIT = "#8a949e"
LAYER_COLOURS = ["#2f5d8a", "#d9822b", "#3c8d5a", "#b8413a", "#7a5ea8", "#2a9d9d", "#a0672e", "#c2528b"]


def _colour(i: int) -> str:
    return LAYER_COLOURS[i % len(LAYER_COLOURS)]


MAX_LEGEND = 10
MAX_BARS = 40


def _side_legend(ax) -> None:
    """A legend beside the axes, cut to MAX_LEGEND entries (deep nets have many layers)."""
    handles, labels = ax.get_legend_handles_labels()
    if len(handles) > MAX_LEGEND:
        extra = len(handles) - MAX_LEGEND + 1
        handles, labels = handles[: MAX_LEGEND - 1], labels[: MAX_LEGEND - 1]
        ax.text(1.02, 0.02, f"… {extra} more layers", transform=ax.transAxes, fontsize=7, color=GREY)
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)


def _log_bins(arrs: list[np.ndarray], n: int) -> tuple[np.ndarray, bool]:
    allv = np.concatenate([a for a in arrs if a.size])
    lo, hi = float(allv.min()), float(allv.max())
    if lo > 0 and hi / lo > 20:
        return np.logspace(math.log10(lo), math.log10(hi), n + 1), True
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, n + 1), False


def overlaid_histogram(plot_id: str, trained: Sequence, init: Sequence | None, title: str, xlabel: str) -> str | None:
    """(a) Share of segments per bin, trained filled and init as a step outline, medians dashed."""
    a = _finite(trained)
    b = _finite(init or [])
    if a.size == 0:
        return None

    def draw(fig):
        ax = fig.add_subplot()
        n = min(30, max(8, int(math.sqrt(a.size) * 2)))
        bins, log = _log_bins([a, b], n)
        ax.hist(a, bins=bins, weights=np.full(a.size, 1 / a.size), color=BLUE, alpha=0.85, edgecolor="white",
                linewidth=0.5, label=f"trained (n={a.size})")
        ax.axvline(float(np.median(a)), color=BLUE, lw=1.3, ls="--")
        if b.size:
            ax.hist(b, bins=bins, weights=np.full(b.size, 1 / b.size), histtype="step", color=INIT, lw=1.6,
                    label=f"at initialisation (n={b.size})")
            ax.axvline(float(np.median(b)), color=INIT, lw=1.3, ls="--")
        if log:
            ax.set_xscale("log")
        ax.set_title(plain(title))
        ax.set_xlabel(plain(xlabel + (" (log scale)" if log else "")))
        ax.set_ylabel("share of segments")
        ax.legend(loc="best")

    return _draw(plot_id, draw, title)


def layer_bars(plot_id: str, layers: list[str], trained: list[float], init: list[float] | None, title: str, xlabel: str) -> str | None:
    """(b) Knots per segment per unit, one pair of bars per kink layer, in layer order."""
    if not layers:
        return None
    if len(layers) > MAX_BARS:  # the rest summed into one bar, as the node table does
        hidden = len(layers) - MAX_BARS + 1
        layers = list(layers[: MAX_BARS - 1]) + [f"{hidden} more layers"]
        trained = list(trained[: MAX_BARS - 1]) + [sum(trained[MAX_BARS - 1 :])]
        if init is not None:
            init = list(init[: MAX_BARS - 1]) + [sum(init[MAX_BARS - 1 :])]
    n = len(layers)
    height = min(9.0, max(2.2, 1.0 + 0.36 * n))

    def draw(fig):
        ax = fig.add_subplot()
        pos = np.arange(n)
        h = 0.38 if init is not None else 0.7
        ax.barh(pos - (h / 2 if init is not None else 0), trained, height=h, color=BLUE, label="trained")
        if init is not None:
            ax.barh(pos + h / 2, init, height=h, color=INIT, label="at initialisation")
        ax.set_yticks(pos, [plain(_short(s, 32)) for s in layers])
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        ax.set_title(plain(title))
        ax.set_xlabel(plain(xlabel))
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))

    return _draw(plot_id, draw, title, size=(FIGSIZE[0] + 1.2, height))


def segment_profile(plot_id: str, profiles: list[tuple[str, dict]], layer_order: list[str], title: str) -> str | None:
    """(c) One panel per model (trained, init): top logits along t, knots as ticks coloured by layer."""
    profiles = [(label, p) for label, p in profiles if p and p.get("t")]
    if not profiles:
        return None
    colours = {name: _colour(i) for i, name in enumerate(layer_order)}

    def draw(fig):
        axes = fig.subplots(len(profiles), 1, sharex=True, squeeze=False)[:, 0]
        for ax, (label, p) in zip(axes, profiles):
            t = np.asarray(p["t"])
            for k, (cls, logits) in enumerate(zip(p["outputs"], p["logits"])):
                ax.plot(t, logits, lw=1.2, color=["#333333", "#777777", "#aaaaaa"][k % 3], label=f"logit {cls}")
            inner, layers = t[1:-1], p.get("knot_layers") or []
            lo, hi = ax.get_ylim()
            for name in [n for n in layer_order if n in layers] + [n for n in dict.fromkeys(layers) if n not in layer_order]:
                xs = [x for x, l in zip(inner, layers) if l == name]
                ax.vlines(xs, lo, lo + (hi - lo) * 0.12, color=colours.get(name, GREY), lw=0.7,
                          label=f"knot: {_short(str(name), 28)} ({len(xs)})")
            ax.set_ylim(lo, hi)
            ax.set_title(plain(f"{label}: {len(inner)} knots"))
            ax.set_ylabel("logit")
            _side_legend(ax)
        axes[-1].set_xlabel("t along the segment (0 → 1)")

    return _draw(plot_id, draw, title, size=(7.2, 2.3 * len(profiles) + 0.5))


def nearest_layer(plot_id: str, trained: list[tuple[float | None, str | None]], init: list[tuple[float | None, str | None]],
                  layer_order: list[str], title: str) -> str | None:
    """(d) Each point's distance to its boundary (sorted), coloured by the layer of its nearest unit;
    init points hollow. Plateaus (many equal distances) stay visible, e.g. over blank background."""
    pts = [(d, n) for d, n in trained if d is not None and d > 0]
    if not pts:
        return None
    colours = {name: _colour(i) for i, name in enumerate(layer_order)}
    init_pts = [(d, n) for d, n in init if d is not None and d > 0]
    zeros = sum(1 for d, _ in trained if d is not None and d <= 0)
    init_zeros = sum(1 for d, _ in init if d is not None and d <= 0)

    def draw(fig):
        ax = fig.add_subplot()
        for data, hollow, tag in ((pts, False, "trained"), (init_pts, True, "init")):
            if not data:
                continue
            order = sorted(range(len(data)), key=lambda i: data[i][0])
            q = (np.arange(len(data)) + 0.5) / len(data)
            for name in dict.fromkeys(n for _, n in data):
                idx = [k for k, i in enumerate(order) if data[i][1] == name]
                ys = [data[order[k]][0] for k in idx]
                c = colours.get(name, GREY)
                kw = dict(facecolors="none", edgecolors=c, linewidths=0.9) if hollow else dict(color=c, edgecolors="white", linewidths=0.3)
                ax.scatter(q[idx], ys, s=18, label=plain(f"{tag}: {_short(str(name), 26)} ({len(idx)})"), **kw)
        ax.set_yscale("log")
        if zeros or init_zeros:
            text = " and ".join(f"{n} {tag}" for n, tag in ((zeros, "trained"), (init_zeros, "at initialisation")) if n)
            ax.text(0.01, 0.97, f"{text} at exactly 0 (not shown)", transform=ax.transAxes, va="top", fontsize=8, color=GREY)
        ax.set_title(plain(title))
        ax.set_xlabel("points, sorted by distance (quantile)")
        ax.set_ylabel("distance to nearest boundary (log)")
        _side_legend(ax)

    return _draw(plot_id, draw, title, size=(7.2, 3.4))


def loops_plot(plot_id: str, loops: list[dict], layer_order: list[str], title: str) -> str | None:
    """(e) Boundaries crossed around each closed translation loop, stacked by layer."""
    if not loops:
        return None
    colours = {name: _colour(i) for i, name in enumerate(layer_order)}

    def draw(fig):
        ax = fig.add_subplot()
        pos = np.arange(len(loops))
        base = np.zeros(len(loops))
        for name in layer_order:
            vals = np.array([float((lp.get("knots_per_layer") or {}).get(name, 0)) for lp in loops])
            if vals.any():
                ax.bar(pos, vals, bottom=base, color=colours[name], label=plain(_short(name, 28)), width=0.75)
                base += vals
        ax.set_xticks(pos, [str(i) for i in pos])
        ax.set_title(plain(title))
        ax.set_xlabel("loop (one per source image)")
        ax.set_ylabel("boundaries crossed")
        _side_legend(ax)

    return _draw(plot_id, draw, title)


def overlaid_ecdf(plot_id: str, series: list[tuple[str, Sequence, str, str]], title: str, xlabel: str) -> str | None:
    """ECDFs of several samples on one axis: (label, values, colour, linestyle)."""
    data = [(lab, np.sort(_finite(v)), c, ls) for lab, v, c, ls in series]
    data = [d for d in data if d[1].size]
    if not data:
        return None

    def draw(fig):
        ax = fig.add_subplot()
        allv = np.concatenate([d[1] for d in data])
        for lab, arr, c, ls in data:
            y = np.arange(1, arr.size + 1) / arr.size
            ax.step(np.r_[arr[0], arr], np.r_[0.0, y], where="post", color=c, ls=ls, lw=1.6, label=f"{lab} (n={arr.size})")
        label_axes(ax, xlabel, "fraction ≤ x", allv)
        ax.axhline(0.5, color=GREY, lw=0.6, ls=":")
        ax.set_ylim(0, 1.02)
        ax.set_title(plain(title))
        ax.legend(loc="lower right")

    return _draw(plot_id, draw, title)


def paired_scatter(plot_id: str, xs: Sequence, ys: Sequence, title: str, xlabel: str, ylabel: str,
                   init: tuple[Sequence, Sequence] | None = None) -> str | None:
    """Per-item scatter of A against B (or trained against init) with the y = x line."""
    x, y = finite_pairs(xs, ys)
    if not len(x):
        return None

    def draw(fig):
        ax = fig.add_subplot()
        ax.scatter(x, y, s=22, color=BLUE, alpha=0.8, edgecolors="white", linewidths=0.4, label="one item")
        lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        log = lo > 0 and hi / lo > 100
        ax.plot([lo, hi], [lo, hi], color=ORANGE, lw=1.2, ls="--", label="y = x")
        if log:
            ax.set_xscale("log")
            ax.set_yscale("log")
        above = int((y > x).sum())
        ax.set_title(plain(title))
        ax.set_xlabel(plain(xlabel + (" (log scale)" if log else "")))
        ax.set_ylabel(plain(ylabel + (" (log scale)" if log else "")))
        ax.text(0.02, 0.97, f"{above} of {len(x)} above the line", transform=ax.transAxes, va="top", fontsize=8, color=GREY)
        ax.legend(loc="lower right")

    return _draw(plot_id, draw, title, size=(4.8, 4.0))


def scatter_overlay(plot_id: str, trained: tuple[Sequence, Sequence], init: tuple[Sequence, Sequence] | None,
                    title: str, xlabel: str, ylabel: str) -> str | None:
    """Density against deviation per segment, trained filled and init hollow grey."""
    def clean(xs, ys):
        p = [(a, b) for a, b in zip(xs, ys) if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)]
        return np.array([q[0] for q in p]), np.array([q[1] for q in p])

    x, y = clean(*trained)
    if x.size == 0:
        return None
    xi, yi = clean(*init) if init else (np.array([]), np.array([]))

    def draw(fig):
        ax = fig.add_subplot()
        ax.scatter(x, y, s=22, color=BLUE, alpha=0.8, edgecolors="white", linewidths=0.4, label="trained")
        if xi.size:
            ax.scatter(xi, yi, s=22, facecolors="none", edgecolors=INIT, linewidths=0.9, label="at initialisation")
        label_axes(ax, xlabel, ylabel, np.r_[x, xi], np.r_[y, yi])
        ax.set_title(plain(title))
        ax.legend(loc="best")

    return _draw(plot_id, draw, title)
