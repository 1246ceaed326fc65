"""Theoretical capacity: how many linear regions the architecture could have at most (and at least).

Every bound is computed with exact Python integers and only then turned into log10, since the counts
overflow any float (Σ_{j≤64} C(512, j) has 83 digits). Past EXACT_UNITS hidden units those
integers have thousands of digits and Serra's sum takes minutes, so the same sums then run in log
space in float64 (the `log10_*` functions: binomials from lgamma, sums by log-sum-exp), equal to the
integers' log10 to about 1e-12 relative. A bound applies to the *maximum
over all weights* of the architecture; a formula that does not cover the graph (residual adds,
concat, MaxPool) is listed with `covered: false` and the reason, never guessed.

Formulas (n_0 the input size, n_l the ReLU units of hidden layer l, L hidden layers):
- `arrangement` (Zaslavsky 1975; Pascanu et al. 2013): one hidden layer, Σ_{i≤n_0} C(n_1, i).
- `montufar2014_lower` (Montúfar et al. 2014, Thm. 4 with widths n_l ≥ n_0):
  (∏_{l<L} ⌊n_l/n_0⌋^{n_0}) · Σ_{j≤n_0} C(n_L, j).
- `montufar2017_upper` (Montúfar 2017): ∏_l Σ_{j≤d_l} C(n_l, j), d_l = min(n_0, …, n_{l-1}).
- `serra2018_upper` (Serra et al. 2018, Thm. 1): Σ over (j_1..j_L) with
  0 ≤ j_l ≤ min(n_0, n_1−j_1, …, n_{l−1}−j_{l−1}, n_l) of ∏_l C(n_l, j_l); summed here by dynamic
  programming over the running minimum, so deep nets cost O(L n_0²).
- `xiong2020_exact` (Xiong et al. 2020, Thm. 1): a single conv layer, Σ over t ∈ K of ∏_p C(d_1, t_p),
  K = {t : Σ_{p∈J} t_p ≤ |∪_{p∈J} S_p| for every set J of output positions}, S_p the input elements
  position p reads.
- `xiong2020_upper` (Xiong et al. 2020, Thm. 2(ii)): R_1 · ∏_{l≥2} Σ_{i≤n_0} C(N_l, i), N_l the units
  of layer l and R_1 the first conv layer's count (Thm. 1, or its Zaslavsky bound when Thm. 1's
  enumeration is out of reach).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import gammaln, logsumexp

from regionaudit import ir

# Up to this many hidden units in all, the bounds are exact integers (Serra's sum over 8192 + 8192
# units: 0.6 s here; over 10 x 8192, 22 s); above it, log-space floats
EXACT_UNITS = 16384
SMALL_K = 1024  # log-space binomials C(n, k) up to this k by a running sum (`_log_binomials`)
# Theorem 1 of Xiong et al. enumerates every vector t and every subset of output positions.
MAX_XIONG_POSITIONS = 12
MAX_XIONG_TUPLES = 200_000

_AFFINE = (ir.MatMul, ir.Conv, ir.ConvTranspose, ir.Einsum, ir.AvgPool, ir.GlobalAvgPool, ir.Scale, ir.Reshape,
           ir.Transpose, ir.Pad, ir.Take, ir.Resample)


@dataclass
class Layer:
    """A hidden ReLU-type layer of a plain chain: its units and the affine nodes that feed it."""

    name: str
    units: int
    slope_zero: bool
    affine: list  # the affine nodes between the previous layer (or the input) and this one


def log10_int(n: int) -> float:
    """log10 of an exact positive integer, without converting it to float first."""
    if n <= 0:
        raise ValueError("log10 of a non-positive count")
    return math.log10(n)  # exact for Python ints of any size (no float conversion of n)


def binomials(n: int, upto: int) -> list[int]:
    """C(n, 0), ..., C(n, min(n, upto)), each from the one before: one small product and one
    division per term, where math.comb would start over (minutes for thousands of units)."""
    out = [1]
    for i in range(min(n, upto)):
        out.append(out[-1] * (n - i) // (i + 1))
    return out


def zaslavsky(n: int, d: int) -> int:
    """Regions of n hyperplanes in general position in R^d: Σ_{i≤d} C(n, i)."""
    return 2**n if d >= n else sum(binomials(n, d))


def montufar2017(widths: list[int], n0: int) -> int:
    out, dim = 1, n0
    for n in widths:
        out *= zaslavsky(n, dim)
        dim = min(dim, n)
    return out


def serra2018(widths: list[int], n0: int) -> int:
    """Serra et al. (2018), Theorem 1, summed over the running minimum d_l by dynamic programming.

    ways[d] sums ∏ C(n_l, j_l) over the tuples so far whose running minimum is d. A layer of n
    units takes j ≤ min(d, n) and moves d to min(d, n − j): d stays for j ≤ n − d, and for larger
    j the new minimum is k = n − j. Grouped by the new minimum, a layer is
        ways'[d] = ways[d] · Σ_{j ≤ min(d, n−d)} C(n, j)              (d ≤ n)
        ways'[k] += C(n, k) · Σ_{d ≥ max(k+1, n−k)} ways[d]         (0 ≤ k ≤ n)
    with prefix sums of the binomials and suffix sums of ways: O(n + d) big-integer steps per
    layer instead of O(n d)."""
    ways = {n0: 1}
    for n in widths:
        row = binomials(n, n)
        prefix = [0] * (n + 2)  # prefix[m + 1] = Σ_{j ≤ m} C(n, j)
        for j, c in enumerate(row):
            prefix[j + 1] = prefix[j] + c
        nxt: dict[int, int] = {}
        for d, w in ways.items():
            if d <= n:
                nxt[d] = nxt.get(d, 0) + w * prefix[min(d, n - d) + 1]
        keys = sorted(ways, reverse=True)
        tail, at = 0, 0  # tail = Σ ways[d] over the keys d >= the current threshold
        for k in sorted(range(n + 1), key=lambda k: -max(k + 1, n - k)):
            low = max(k + 1, n - k)
            while at < len(keys) and keys[at] >= low:
                tail += ways[keys[at]]
                at += 1
            if tail:
                nxt[k] = nxt.get(k, 0) + row[k] * tail
        ways = {d: w for d, w in nxt.items() if w}
    return sum(ways.values())


def montufar2014_lower(widths: list[int], n0: int) -> int:
    out = 1
    for n in widths[:-1]:
        out *= (n // n0) ** n0
    return out * zaslavsky(widths[-1], n0)


# The same counts as natural logs in float64, for nets past EXACT_UNITS hidden units; each
# log10_* function returns the log10 of the count.


def _log_binomials(n: int, upto: int) -> np.ndarray:
    """ln C(n, k) for k = 0..min(n, upto): for small k a running sum of ln((n - i) / (i + 1)),
    since lgamma's difference would cancel values near ln n! (1e6 for n = 1e5) to a small one;
    beyond, where ln C(n, k) is itself large, that difference."""
    m = min(n, upto)
    head = min(m, SMALL_K)
    i = np.arange(head, dtype=np.float64)
    out = np.zeros(m + 1)
    out[1 : head + 1] = np.cumsum(np.log(n - i) - np.log(i + 1))
    k = np.arange(head + 1, m + 1, dtype=np.float64)
    out[head + 1 :] = gammaln(n + 1.0) - gammaln(k + 1) - gammaln(n - k + 1)
    return out


def _ln_zaslavsky(n: int, d: int) -> float:
    return n * math.log(2) if d >= n else float(logsumexp(_log_binomials(n, d)))


def log10_zaslavsky(n: int, d: int) -> float:
    return _ln_zaslavsky(n, d) / math.log(10)


def log10_montufar2017(widths: list[int], n0: int) -> float:
    total, dim = 0.0, n0
    for n in widths:
        total += _ln_zaslavsky(n, dim)
        dim = min(dim, n)
    return total / math.log(10)


def log10_montufar2014_lower(widths: list[int], n0: int) -> float:
    return (sum(n0 * math.log(n // n0) for n in widths[:-1]) + _ln_zaslavsky(widths[-1], n0)) / math.log(10)


def log10_serra2018(widths: list[int], n0: int) -> float:
    """`serra2018`'s dynamic programme with ways[d] as logs (-inf: no tuple), over arrays."""
    ways = np.full(n0 + 1, -np.inf)
    ways[n0] = 0.0
    for n in widths:
        row = _log_binomials(n, n)  # ln C(n, k), k = 0..n
        prefix = np.logaddexp.accumulate(row)  # ln Σ_{j≤m} C(n, j)
        top = len(ways) - 1
        suffix = np.append(np.logaddexp.accumulate(ways[::-1])[::-1], -np.inf)  # ln Σ_{d≥m} ways[d]
        nxt = np.full(n + 1, -np.inf)
        d = np.arange(min(top, n) + 1)
        nxt[d] = ways[d] + prefix[np.minimum(d, n - d)]
        k = np.arange(n + 1)
        nxt = np.logaddexp(nxt, row + suffix[np.minimum(np.maximum(k + 1, n - k), top + 1)])
        ways = nxt
    return float(logsumexp(ways)) / math.log(10)


def xiong2020_exact(supports: list[frozenset], filters: int) -> int | None:
    """Theorem 1 of Xiong et al. (2020), or None when the enumeration is out of reach."""
    p = len(supports)
    caps = [min(filters, len(s)) for s in supports]
    if p > MAX_XIONG_POSITIONS or math.prod(c + 1 for c in caps) > MAX_XIONG_TUPLES:
        return None
    union = [0] * (1 << p)
    for mask in range(1, 1 << p):
        members = [supports[i] for i in range(p) if mask >> i & 1]
        union[mask] = len(frozenset().union(*members))
    total = 0

    def rec(i: int, sums: list[int], prod: int) -> None:
        # sums[mask] = Σ t over mask, for masks of the positions assigned so far
        nonlocal total
        if i == p:
            total += prod
            return
        bit = 1 << i
        for t in range(caps[i] + 1):
            ok = True
            new = sums[:]
            for mask in range(bit):  # masks of earlier positions, extended by position i
                s = sums[mask] + t
                if s > union[mask | bit]:
                    ok = False
                    break
                new[mask | bit] = s
            if not ok:
                break  # a larger t only breaks more constraints
            rec(i + 1, new, prod * math.comb(filters, t))

    rec(0, [0] * (1 << p), 1)
    return total


def conv_supports(conv: ir.Conv, in_shape: tuple[int, ...]) -> list[frozenset]:
    """The input elements each output position of a conv reads (its receptive field)."""
    n = math.prod(in_shape)
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *in_shape)
    ones = ir.Conv(conv.name, (0,), conv.shape, weight=torch.ones(conv.weight.shape, dtype=torch.float64),
                   strides=conv.strides, pads=conv.pads, dilations=conv.dilations, groups=1)
    reach = ones.linear([eye])[:, 0]  # (inputs, *spatial): channel 0 reads what every filter reads
    reach = reach.reshape(n, -1) != 0
    return [frozenset(torch.nonzero(reach[:, q]).flatten().tolist()) for q in range(reach.shape[1])]


def chain_layers(net: ir.Network) -> tuple[list[Layer] | None, str]:
    """The hidden layers of a plain chain of affine maps and ReLU-type units, or None and why not."""
    kinds = {type(n) for n in net.nodes}
    if ir.MaxPool in kinds:
        return None, "the network has MaxPool, for which no formula is stated here"
    if ir.Sum in kinds:
        return None, "the network has residual adds, for which no formula is stated here"
    if ir.Concat in kinds:
        return None, "the network has concat branches, for which no formula is stated here"
    layers: list[Layer] = []
    affine: list = []
    for i, node in enumerate(net.nodes[1 : net.output + 1], start=1):
        if node.inputs != (i - 1,):
            return None, "the graph is not a single chain of layers"
        if isinstance(node, ir.LeakyRelu):
            zero = bool(torch.all(node.slope == 0))
            layers.append(Layer(node.name, node.units, zero, affine))
            affine = []
        elif isinstance(node, _AFFINE):
            affine.append(node)
        else:
            return None, f"the network has a {node.kind} node, for which no formula is stated here"
    if not layers:
        return None, "the network has no ReLU-type units: it is affine, with one region"
    return layers, ""


def _log10(exact, in_logs, widths: list[int], n0: int) -> float:
    """log10 of a count: `exact(widths, n0)` as an integer up to EXACT_UNITS hidden units,
    `in_logs(widths, n0)` (its `log10_*` twin) beyond."""
    return log10_int(exact(widths, n0)) if sum(widths) <= EXACT_UNITS else in_logs(widths, n0)


def _log10_zaslavsky(n: int, d: int) -> float:
    return log10_int(zaslavsky(n, d)) if n <= EXACT_UNITS else log10_zaslavsky(n, d)


def _bound(name, kind, log10: float | None, formula, covered=True, reason="") -> dict:
    return {
        "name": name,
        "kind": kind,
        "log10": log10 if covered and log10 is not None else None,
        "formula": formula,
        "covered": bool(covered and log10 is not None),
        "reason": reason,
    }


def _dense_layer(layer: Layer, n_in: int) -> bool:
    """The layer's units read a full dense map of the `n_in` values of the layer before (up to
    reshapes and nonzero scales): one product whose weight maps all of them to all its units, not
    a weight shared across the rows of a (tokens, features) tensor."""
    dense = [n for n in layer.affine if isinstance(n, ir.MatMul)]
    others = [n for n in layer.affine if not isinstance(n, (ir.MatMul, ir.Reshape, ir.Transpose, ir.Scale))]
    scales_ok = all(n.mul is None or bool(torch.all(n.mul != 0)) for n in layer.affine if isinstance(n, ir.Scale))
    full = len(dense) == 1 and dense[0].weight.dim() == 2 and dense[0].weight.numel() == n_in * layer.units
    return full and not others and scales_ok


def _dense_first(layers: list[Layer], n0: int) -> bool:
    return _dense_layer(layers[0], n0)


def _all_dense(layers: list[Layer], n0: int) -> bool:
    return all(_dense_layer(l, n) for l, n in zip(layers, [n0] + [l.units for l in layers[:-1]]))


def has_bias(layer: Layer) -> bool:
    """Whether the layer can offset its units apart: its last product (a node with a weight) has
    a bias, or a shift follows it (batch norm, an added constant). An offset before the product,
    as an input normalisation (x − m) / s, only moves the point every hyperplane passes through.
    The bounds count over all weights of the architecture, so it is the bias's presence that
    matters, not its values."""
    products = [k for k, n in enumerate(layer.affine) if getattr(n, "weight", None) is not None]
    after = layer.affine[products[-1] + 1 :] if products else layer.affine
    if products and getattr(layer.affine[products[-1]], "bias", None) is not None:
        return True
    return any(isinstance(n, ir.Scale) and n.add is not None for n in after)


def _construction_applies(layers: list[Layer] | None, n0: int, biased: list[Layer]) -> bool:
    """Whether Montúfar et al.'s construction (the lower bound) applies: dense ReLU layers, each of
    `biased` with a bias it can set."""
    return (layers is not None and _all_dense(layers, n0) and all(l.slope_zero for l in layers)
            and all(has_bias(l) for l in biased))


STRUCTURED = "the first layer is structured (not a general dense map)"


def general_first(layers: list[Layer], n0: int) -> str:
    """Why a single layer's hyperplanes cannot be put in general position by any weights, or ""
    when they can (a dense map of the whole input, with biases)."""
    if not _dense_first(layers, n0):
        return STRUCTURED
    if not has_bias(layers[0]):
        return "the first layer has no biases: its hyperplanes all pass through one point"
    return ""


def _widths_text(widths: list[int]) -> str:
    return ", ".join(map(str, widths)) if len(widths) <= 8 else f"{', '.join(map(str, widths[:7]))}, … ({len(widths)} layers)"


def dense_bounds(layers: list[Layer] | None, reason: str, n0: int, exact_ok: str, lower_ok: bool) -> list[dict]:
    """The bounds that hold for any affine maps between ReLU layers, for input dimension n0.
    `exact_ok` is why a single layer's arrangement count is only an upper bound ("" where it is
    exact); `lower_ok` whether Montúfar's construction applies."""
    names = ("arrangement", "montufar2014_lower", "montufar2017_upper", "serra2018_upper")
    if layers is None:
        return [_bound(n, k, None, "", False, reason) for n, k in zip(names, ("exact", "lower", "upper", "upper"))]
    widths = [l.units for l in layers]
    w = _widths_text(widths)
    out = []
    if len(layers) == 1:
        kind = "upper" if exact_ok else "exact"
        text = f"Σ_{{i≤{n0}}} C({widths[0]}, i) (Zaslavsky: {widths[0]} hyperplanes in R^{n0})"
        if exact_ok:
            text += f"; an upper bound here, since {exact_ok}"
        out.append(_bound("arrangement", kind, _log10_zaslavsky(widths[0], n0), text))
    else:
        out.append(_bound("arrangement", "exact", None, "", False, "only for one hidden layer"))
    lower_text = f"(∏_{{l<L}} ⌊n_l/{n0}⌋^{n0}) · Σ_{{j≤{n0}}} C(n_L, j), widths {w}"
    if not lower_ok:
        out.append(_bound("montufar2014_lower", "lower", None, lower_text, False,
                          "the construction needs dense ReLU layers with biases (not conv, pooling or leaky slopes)"))
    elif min(widths) < n0:
        out.append(_bound("montufar2014_lower", "lower", None, lower_text, False, f"needs every width ≥ n_0 = {n0}"))
    else:
        out.append(_bound("montufar2014_lower", "lower", _log10(montufar2014_lower, log10_montufar2014_lower, widths, n0),
                          lower_text))
    out.append(_bound("montufar2017_upper", "upper", _log10(montufar2017, log10_montufar2017, widths, n0),
                      f"∏_l Σ_{{j≤d_l}} C(n_l, j), d_l = min(n_0..n_{{l-1}}), n_0 = {n0}, widths {w}"))
    serra_text = f"Σ_{{j∈J}} ∏_l C(n_l, j_l), 0 ≤ j_l ≤ min(n_0, n_1−j_1, …, n_{{l−1}}−j_{{l−1}}, n_l), n_0 = {n0}, widths {w}"
    if all(l.slope_zero for l in layers):
        out.append(_bound("serra2018_upper", "upper", _log10(serra2018, log10_serra2018, widths, n0), serra_text))
    else:
        out.append(_bound("serra2018_upper", "upper", None, serra_text, False,
                          "leaky slopes keep the dimension that inactive ReLUs remove, which the bound counts on"))
    return out


def xiong_bounds(net: ir.Network, layers: list[Layer] | None, reason: str, n0: int) -> list[dict]:
    convs = [] if layers is None else [n for n in layers[0].affine if isinstance(n, ir.Conv)]
    if layers is None or len(convs) != 1 or layers[0].affine[-1] is not convs[0] and not all(
        isinstance(n, ir.Scale) for n in layers[0].affine[layers[0].affine.index(convs[0]) + 1 :]
    ):
        why = reason or "the first hidden layer is not a single convolution"
        return [_bound("xiong2020_exact", "exact", None, "", False, why), _bound("xiong2020_upper", "upper", None, "", False, why)]
    conv = convs[0]
    first = layers[0]
    filters = int(conv.weight.shape[0])
    before = [n for n in first.affine[: first.affine.index(conv)]]
    pre_ok = all(isinstance(n, (ir.Reshape, ir.Scale)) for n in before)
    in_shape = net.nodes[conv.inputs[0]].shape
    spatial = conv.weight.dim() - 2
    batched = len(in_shape) == spatial + 2
    in_shape = in_shape[1:] if batched else in_shape  # (the graph's batch axis of 1)
    exact = None
    exact_why = ""
    if batched and net.nodes[conv.inputs[0]].shape[0] != 1:
        exact_why = "a fixed batch of several rows is one input, its rows convolved apart"
    elif conv.groups != 1:
        exact_why = "grouped convolution: the filters at one position do not share their inputs"
    elif not pre_ok:
        exact_why = "the convolution is preceded by a map other than a reshape or scale"
    elif math.prod(in_shape) > 4096:
        exact_why = "too many inputs to trace the receptive fields"
    elif not has_bias(first):
        exact_why = "the convolution has no biases: its hyperplanes all pass through one point"
    else:
        supports = conv_supports(conv, in_shape)
        exact = xiong2020_exact(supports, filters)
        if exact is None:
            exact_why = f"{len(supports)} output positions with {filters} filters: the enumeration over subsets is out of reach"
    positions = math.prod(conv.shape[-spatial:])
    text1 = f"Σ_{{t∈K}} ∏_p C({filters}, t_p) over {positions} output positions (Theorem 1)"
    out = [_bound("xiong2020_exact", "exact", log10_int(exact) if exact is not None and len(layers) == 1 else None, text1,
                  exact is not None and len(layers) == 1,
                  exact_why or ("only for a single conv layer" if len(layers) > 1 else ""))]
    units = [l.units for l in layers]
    rest = sum(_log10_zaslavsky(n, n0) for n in units[1:])
    if exact is not None:
        r1, r1_text = log10_int(exact), "R_1 = Theorem 1's exact count"
    else:
        r1, r1_text = _log10_zaslavsky(units[0], n0), f"R_1 replaced by its Zaslavsky bound Σ_{{i≤{n0}}} C({units[0]}, i) ({exact_why})"
    text2 = f"R_1 · ∏_{{l≥2}} Σ_{{i≤{n0}}} C(N_l, i), N = {_widths_text(units)}; {r1_text}"
    out.append(_bound("xiong2020_upper", "upper", r1 + rest, text2))
    return out


def _tightest(bounds: list[dict]) -> tuple[float | None, float | None]:
    ups = [b["log10"] for b in bounds if b["covered"] and b["kind"] in ("upper", "exact")]
    lows = [b["log10"] for b in bounds if b["covered"] and b["kind"] in ("lower", "exact")]
    return (min(ups) if ups else None), (max(lows) if lows else None)


def _restricted(layers, reason: str, n0: int, dim: int, what: str) -> dict:
    """Bounds for the network restricted to a line (dim 1) or a plane (dim 2) through input space:
    one that misses the origin, so that a layer without biases has offsets there."""
    if layers is not None and dim >= n0:
        return {"dimension": dim, "bounds": [], "log10_upper": None, "log10_lower": None,
                "note": f"the input has {n0} dimensions: the bounds above apply"}
    lower_ok = _construction_applies(layers, n0, layers[1:] if layers else [])  # (the line or plane offsets the first)
    # a generic line or plane cuts the n_1 hyperplanes of a dense first layer in general position
    exact_ok = reason if layers is None else "" if _dense_first(layers, n0) else STRUCTURED
    bounds = dense_bounds(layers, reason, dim, exact_ok=exact_ok, lower_ok=lower_ok)
    up, low = _tightest(bounds)
    return {"dimension": dim, "bounds": bounds, "log10_upper": up, "log10_lower": low,
            "note": f"regions {what} can meet: the network restricted to it is a network with n_0 = {dim}"}


def capacity(net: ir.Network) -> dict:
    """`capacity` of the result: bounds for the whole input space, a line and a plane."""
    n0 = math.prod(net.input_shape)
    layers, reason = chain_layers(net)
    exact_ok = general_first(layers, n0) if layers is not None else reason
    lower_ok = _construction_applies(layers, n0, layers or [])
    bounds = dense_bounds(layers, reason, n0, exact_ok, lower_ok) + xiong_bounds(net, layers, reason, n0)
    up, low = _tightest(bounds)
    return {
        "input_dimension": n0,
        "widths": None if layers is None else [l.units for l in layers],
        "covered": layers is not None,
        "reason": reason,
        "bounds": bounds,
        "log10_upper": up,
        "log10_lower": low,
        "line": _restricted(layers, reason, n0, 1, "a line"),
        "plane": _restricted(layers, reason, n0, 2, "a plane"),
        "measured": None,
    }


def measured(cap: dict, result) -> dict:
    """What the measurement implies, beside the bounds (Hanin & Rolnick 2019b): regions per unit
    length per neuron, the most regions any segment crossed, and a 2-D slice's count per area."""
    neurons = result.model.neurons
    per_len = result.density.per_length
    segs = [s.regions for s in result.density.segments]
    out = {
        "regions_per_length_per_neuron": per_len["median"] / neurons if per_len and neurons else None,
        "max_segment_regions": max(segs) if segs else None,
        "log10_max_segment_regions": math.log10(max(segs)) if segs else None,
        "slice_regions": None,
        "slice_regions_per_area_per_neuron2": None,
    }
    sl = result.slice
    if sl is not None:
        out["slice_regions"] = sl.regions
        if sl.regions_per_unit_area is not None and neurons:
            out["slice_regions_per_area_per_neuron2"] = sl.regions_per_unit_area / neurons**2
    return out


def format_bounds(cap: dict) -> list[str]:
    """Lines for `regionaudit inspect`: each bound with its formula, or why it does not apply."""
    lines = [f"capacity (maximum linear regions over all weights; input dimension n_0 = {cap['input_dimension']}):"]

    def rows(bounds, indent="  "):
        for b in bounds:
            if b["covered"]:
                lines.append(f"{indent}{b['name']:<20} {b['kind']:<6} 10^{b['log10']:.2f}   {b['formula']}")
            else:
                lines.append(f"{indent}{b['name']:<20} {b['kind']:<6} not covered: {b['reason']}")

    rows(cap["bounds"])
    for key in ("line", "plane"):
        part = cap[key]
        if part["bounds"]:
            lines.append(f"  on a {key} (n_0 = {part['dimension']}):")
            rows(part["bounds"], "    ")
    return lines
