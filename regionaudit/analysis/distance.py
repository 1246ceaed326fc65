"""Distance from a point to the boundary of its activation region (Hanin & Rolnick 2019a).

On x's region R every pre-activation z_i is affine with gradient g_i = ∇z_i(x), and R is the
intersection of the half-spaces {sign z_i fixed}; so d(x) = min_i |z_i(x)| / ‖g_i‖ over units with
g_i ≠ 0. For MaxPool the constraints are the margins between each window's winner w and its other
candidates j: (z_w - z_j) / ‖∇(z_w - z_j)‖. The ‖g‖² are accumulated in forward mode: chunks of
input basis directions go through the linear parts with x's masks fixed; the Jacobian is never
stored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from regionaudit.analysis import bands
from regionaudit.analysis._common import (
    bytes_per_probe, check_finite, check_fits, default_max_memory, first_kink, needed_nodes, overwritable, readers,
    tangent_scratch, zero_tolerance,
)
from regionaudit.conv import conv2d_of_basis
from regionaudit.errors import BadOption
from regionaudit.ir import Clip, Conv, LeakyRelu, MaxPool, Network, Node, Reshape, Sum, Transpose, UnitKink
from regionaudit.ir.compare import numpy_shares
from regionaudit.options import AUTO_APPROX_INPUT, DISTANCE_METHODS

# `--distance auto` measures approximately above AUTO_APPROX_INPUT input elements (by size alone, so
# the JSON never depends on the machine): 3x64x64 images stay exact, 3x128x128 and larger are
# approximate. The option's values and defaults are defined once, in options.py.
METHODS = DISTANCE_METHODS
# Rows of the identity per chunk of an exact distance whose input is an image, about: whole
# image rows (`basis_chunks`; measured on 32x32 and 64x64 images, 3-64 channels: 128 best or
# within 10 % of the best of 32-256)
BAND_DIRECTIONS = 128
SQUARES_BYTES = 1 << 20  # one chunk of squared tangents (`_sum_squares`): small enough for the cache
# From this many values per direction (256 KiB of float64, about a core's L2), `_sum_squares`
# adds one direction's squared differences at a time instead (measured: 1.1x at 32 Ki values, 3x at 256 Ki)
SQUARES_ONE_BY_ONE = 1 << 15


def choose_method(method: str, input_size: int) -> str:
    """'exact' or 'approx' for `--distance METHOD` on an input of `input_size` elements."""
    if method not in METHODS:
        raise BadOption(f"--distance must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "auto":
        return "approx" if input_size > AUTO_APPROX_INPUT else "exact"
    return method


# the two-sided coverage of a "3σ" bound: a normal variable lies within 3σ with this probability
THREE_SIGMA_COVERAGE = 0.9973002039367398


def approx_relative_error(directions: int) -> float:
    """The relative error of one unit's distance estimated from `directions` Gaussian
    projections that is exceeded with the probability a normal variable exceeds 3σ.

    With ω_1..ω_m ~ N(0, I/m), X = m Σ_k (g·ω_k)² / ‖g‖² is χ²_m, so the estimate |z| / ‖ĝ‖ is
    the distance times √(m / X): too long by √(m / q_lo) - 1, too short by 1 - √(m / q_hi), with
    q_lo and q_hi the χ²_m quantiles that leave (1 - coverage) / 2 on either side. The larger
    side, the long one, is stated. (The first-order 3 / √(2m) understates it below a few hundred
    directions: √(m / X) has a heavy upper tail, +515 % at m = 4 where 3 / √(2m) said 106 %.)
    """
    from scipy.stats import chi2  # (imported here: the command line starts without scipy)

    q_lo = float(chi2.ppf((1 - THREE_SIGMA_COVERAGE) / 2, directions))
    return math.sqrt(directions / q_lo) - 1


GAUSS_BLOCK = 16  # rows of the directions drawn at a time (see `gaussian_chunks`)


def gaussian_directions(dim: int, directions: int, seed: int) -> torch.Tensor:
    """Seeded N(0, 1/m) projection directions (m, dim) in float64 on CPU, the same on every device:
    Σ_k (g·ω_k)² with these is an unbiased estimate of ‖g‖². All at once: `gaussian_chunks`
    gives the same rows a chunk at a time."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(directions, dim, generator=gen, dtype=torch.float64) / math.sqrt(directions)


def _block_rows(dim: int, directions: int) -> list[int]:
    """The rows of each draw: GAUSS_BLOCK at a time, the rest last (or with the block before, where
    alone it would be fewer than 16 numbers, which torch draws another way)."""
    sizes = [GAUSS_BLOCK] * (directions // GAUSS_BLOCK)
    rest = directions % GAUSS_BLOCK
    if rest and rest * dim < 16 and sizes:
        sizes[-1] += rest
    elif rest:
        sizes.append(rest)
    return sizes


def gaussian_chunks(dim: int, directions: int, seed: int, rows: int):
    """`gaussian_directions` in chunks of at most `rows` rows, drawn as they are given, so that
    about one chunk is in memory at a time: whole draws of `_block_rows` are written into a
    buffer of up to `rows` rows (one draw, where a draw holds more) and given out in pieces of
    `rows`. The same numbers as drawing all at once, however they are chunked: torch's CPU normal
    sampler fills a tensor with uniforms in order and turns each aligned run of 16 into normals,
    and every draw here holds a multiple of 16 numbers but the last (a test holds torch to it)."""
    gen = torch.Generator().manual_seed(seed)
    scale = math.sqrt(directions)
    groups: list[list[int]] = []  # the draws that share a buffer
    for size in _block_rows(dim, directions):
        if groups and sum(groups[-1]) + size <= rows:
            groups[-1].append(size)
        else:
            groups.append([size])
    for group in groups:
        buffer = torch.empty(sum(group), dim, dtype=torch.float64)
        at = 0
        for size in group:
            torch.randn(size, dim, generator=gen, dtype=torch.float64, out=buffer[at : at + size])
            at += size
        yield from buffer.div_(scale).split(rows)


def tangent_order(network: Network) -> list[int]:
    """The nodes a distance runs, in order: the kink nodes and what they read. After the last
    kink node the tangents would feed no margin, so the layers there (often a wide classifier or
    a pooling of the widest layer) are never run."""
    order = needed_nodes(network)
    read: set[int] = set()
    for i in reversed(order):
        if network.nodes[i].is_kink or i in read:
            read.update(network.nodes[i].inputs)
    return [i for i in order if i == 0 or i in read or network.nodes[i].is_kink]


def _chunk_bytes(network: Network, order: list[int], pooled: set[int]) -> tuple[int, int]:
    """Bytes per tangent direction that every point shares (the layers before the first kink
    node, where a tangent has no point axis yet, see `_accumulate`) and bytes per direction and
    point after that, for sizing chunks."""
    itemsize = torch.empty((), dtype=network.dtype).element_size()
    last = network.last_use(order)
    # nodes whose tangent (or a kink node's temporaries) differs from point to point: a kink
    # node whose tangent goes on (but a ReLU whose max pool takes its tangent shared), and
    # whatever reads one of these
    masked = {network.nodes[i].inputs[0] for i in pooled}
    per_point: list[int] = []
    for i in order:
        node = network.nodes[i]
        if (node.is_kink and last[i] > i and i not in masked) or any(j in per_point for j in node.inputs):
            per_point.append(i)
    scratch = _direction_scratch(network, pooled)
    shared = bytes_per_probe(network, order, itemsize, live_factor=1.5, scratch=scratch)
    return shared, (bytes_per_probe(network, per_point, itemsize, live_factor=1.5, scratch=scratch) if per_point else 0)


def _direction_scratch(network: Network, pooled: set[int]) -> Callable[[Network, Node], int]:
    """The values one direction of one point holds beside the live tangents while a node runs
    (`bytes_per_probe`'s `scratch`). For a max pool these are copies of its windows, not
    `tangent_scratch`'s copy of every window with its differences (which polygons hold): a pool of
    a shared ReLU (`pooled`, `_pool_of_masked`) copies its windows and gathers those of the
    directions they see, two copies at most; another (`_add_window_squares`) copies its windows
    where that pays (`MaxPool.copy_windows`) and otherwise none, its squares summed a block or one
    direction at a time into buffers held per point. (Counted as for polygons, the 3x3/1 pool of
    `inception-cifar`, 32 channels at 32x32, cut its chunks to 6 directions: its distance
    1.6-1.8x slower.)"""
    masked = [network.nodes[i] for i in pooled]

    def scratch(net: Network, node: Node) -> int:
        if not isinstance(node, MaxPool):
            return tangent_scratch(net, node)
        windows = math.prod(node.shape) * math.prod(node.kernel)
        if any(node is m for m in masked):
            return 2 * windows
        return windows if node.copy_windows else 0

    return scratch


def _point_bytes(network: Network, order: list[int], pooled: set[int]) -> tuple[int, int]:
    """Bytes one point holds through all its chunks of directions, and the most it holds beside
    them before and after those chunks. Held: each kink node's input and squared gradients (a max
    pool's per candidate), a pool's winners and their cells, and a pool of a shared ReLU's slopes
    per candidate (`_MaskedPool`). Before and after: the forward pass's live values and
    temporaries (`_forward_masks`, the pools' winners), and the one kink node's float64
    temporaries `_nearest` makes at a time (six per unit and breakpoint, seven per candidate: a
    float32 network's values are copied to float64 there)."""
    itemsize = torch.empty((), dtype=network.dtype).element_size()
    held, nearest = 0, 0
    for i in order:
        node = network.nodes[i]
        if not node.is_kink:
            continue
        size = math.prod(network.nodes[node.inputs[0]].shape)
        if isinstance(node, MaxPool):
            out, candidates = math.prod(node.shape), math.prod(node.shape) * math.prod(node.kernel)
            held += itemsize * (size + candidates) + 16 * out
            if i in pooled:
                held += 8 * out + itemsize * candidates
            nearest = max(nearest, 7 * 8 * candidates)
        else:
            held += 2 * itemsize * size
            nearest = max(nearest, 6 * 8 * size * node.breaks)
    forward = bytes_per_probe(network, order, itemsize, live_factor=1.0)
    return held, max(forward, nearest)


def min_memory(network: Network) -> int:
    """The smallest memory budget `boundary_distances` can work in: one point (`_point_bytes`)
    and one tangent of it (the bytes of a direction that every point shares, `_chunk_bytes`)."""
    order = tangent_order(network)
    pooled = _pools_of_shared_relus(network, order, network.last_use(order))
    return _least_bytes(_chunk_bytes(network, order, pooled)[0], *_point_bytes(network, order, pooled))


def _least_bytes(shared: int, held: int, passing: int) -> int:
    """One point's values with the more of one direction's tangents and what the point holds
    only before and after them (`_chunk_bytes`, `_point_bytes`)."""
    return held + max(passing, shared)


@dataclass
class NearestBoundary:
    """What the analysis finds at one point; `assemble` makes the result's `PointDistance` of it."""

    distance: float | None  # None when no unit has a nonzero gradient at the point
    node: str | None  # ONNX name of the kink node of the nearest unit
    unit: int | None  # flat index in that node's input tensor (MaxPool: the window index)


def _forward_masks(network: Network, order: list[int], last: dict[int, int], x: torch.Tensor):
    """Each kink node's input z (P, *shape) at x."""
    values = {0: x}
    kinks: dict[int, torch.Tensor] = {}
    for i in order[1:]:
        node = network.nodes[i]
        xs = [values[k] for k in node.inputs]
        if node.is_kink:
            kinks[i] = xs[0]
        if last[i] > i:  # something later reads it
            values[i] = node.forward(xs)
        for k in list(values):
            if last.get(k, k) <= i:
                del values[k]
    return kinks


def _accumulate(network, order, last, kinks, cells, pooled, basis, sq, start=None, root=0):
    """Push tangents basis (T, D) through at the points of `kinks`; add squared norms into sq.
    `cells` holds each MaxPool's `winner_cells` at the points, `pooled` the winners and slopes of
    each max pool of a shared ReLU (`_pools_of_shared_relus`, `_MaskedPool`). `start`: basis is
    rows start.. of the identity (an exact distance) standing for node `root`'s values
    (`basis_node`): its 2-D convolution is placed rather than multiplied out (`conv2d_of_basis`),
    and the image layers after it run on the rows where their tangents can be nonzero, each
    tangent holding those rows only (bands.py).

    Up to the first kink node a tangent does not depend on the point (no mask applies yet), so it
    travels with a point axis of 1 and is broadcast where masks first differ: the first layers,
    often the widest, run once per direction instead of once per direction and point.
    """
    t = basis.shape[0]
    image = _shape_of(network, root)
    band = {root: None if start is None else bands.of_basis(image, start, t)}
    tan = {root: basis.reshape(t, 1, *image)}  # every row, or band[k]'s only
    masked = {network.nodes[i].inputs[0] for i in pooled}

    def holds(k: int) -> tuple[int, int]:
        return bands.held(tan[k], band[k], network.nodes[k].shape[-2])

    def whole(k: int) -> torch.Tensor:
        """Node k's tangent with every row, for a layer that reads them all (kept for the next)."""
        if band[k] is not None:
            tan[k] = bands.rows_of(tan[k], holds(k), (0, network.nodes[k].shape[-2]))
        return tan[k]

    for i in order[order.index(root) + 1 :]:
        node = network.nodes[i]
        q = node.inputs[0] if node.inputs else None
        rows = None if q is None else band[q]
        out = None  # the band of tan[i]
        if isinstance(node, UnitKink):
            z = kinks[i]
            on = rows if isinstance(node, (LeakyRelu, Clip)) and bands.slopes_rowwise(node) else None
            dz = whole(q) if on is None else bands.rows_of(tan[q], holds(q), on)
            sq_rows = bands.crop(sq[i].view(sq[i].shape[0], *node.shape), on)
            sq_rows += _sum_squares(dz)
            out = rows
            if i in masked:  # the max pool reading it takes dz shared and the slopes apart
                tan[i] = tan[q]
            elif isinstance(node, (LeakyRelu, Clip)) and last[i] > i:
                # dz is tan[q] or a view of its rows: overwritten where nothing else reads it, and
                # never an expanded view (a Scale without factors broadcasts its input)
                if dz.shape[1] == z.shape[0] and tan[q].is_contiguous() and overwritable(tan, q, last, i, keep=(basis,)):
                    _relu_tangent(node, z, dz, True, on)
                    tan[i] = tan[q]
                else:
                    tan[i] = _relu_tangent(node, z, dz, False, on)
            elif last[i] > i:
                tan[i] = node.tangent(z, dz)
        elif isinstance(node, MaxPool):
            out = bands.pool_rows(node, rows)
            part = None if bands.full(out, node.shape[-2]) else out
            if i in pooled:
                if part is None:
                    dz, first = whole(q), 0
                else:  # the input rows its windows read alone (zero outside the band, as the padding)
                    read = bands.pool_input_rows(node, part, network.nodes[q].shape[-2])
                    dz, first = bands.rows_of(tan[q], holds(q), read), read[0]
                tan_i = _pool_of_masked(node, dz, cells[i], pooled[i], sq[i], last[i] > i, part, first)
            else:
                dz = whole(q)
                tan_i = node.tangent(kinks[i], dz, cells[i], part)  # (T, P, *shape), or its rows
                _add_window_squares(node, dz, tan_i, sq[i], part)
            if last[i] > i:
                tan[i] = tan_i
        elif start is not None and _places_basis(node, root, image):
            out = bands.conv_rows(node, rows)  # (the rows written: every tap lands in them)
            y = conv2d_of_basis(node.weight, image[-3:], start, t, node.strides, node.pads, node.dilations, node.groups, out)
            tan[i] = y.reshape(t, 1, *node.shape[:-2], *y.shape[-2:])
        elif rows is not None and bands.layer_rows(node, rows) is not None:  # a convolution, transposed or not, or a resize
            d = tan[q]
            y, out = bands.on_band(node, d.reshape(t * d.shape[1], *d.shape[2:]), holds(q), rows)  # (a band may be empty)
            tan[i] = y.reshape(t, d.shape[1], *y.shape[1:])
        else:
            held = [band[k] for k in node.inputs]
            if rows is not None and None not in held and bands.keeps_band(node, [network.nodes[k].shape for k in node.inputs]):
                out = (min(lo for lo, _ in held), max(hi for _, hi in held))  # their union
            p = max(tan[k].shape[1] for k in node.inputs)
            into = isinstance(node, Sum) and overwritable(tan, q, last, i, keep=(basis,))  # its first term
            y = None
            if out is not None:  # on the inputs' rows `out`
                terms = [bands.rows_of(tan[k], holds(k), out) for k in node.inputs]
                if isinstance(node, Sum):
                    a, b = holds(q)
                    into = into and tan[q].shape[1] == p and tan[q].is_contiguous() and node.coeffs[0] == 1.0 and a <= out[0] and out[1] <= b
                    y = _sum_of(node, terms, into)
                    y = tan[q] if into else y  # (every row, or band[q] = out)
                else:
                    y = bands.on_rows(node, _flat(terms, t, p))  # None: a layer that reads every row
                    y = None if y is None else y.reshape(t, p, *y.shape[1:])
            if y is None:
                flat = _flat([whole(k) for k in node.inputs], t, p)
                y = node.forward_inplace(flat) if into else node.linear(flat)  # a Sum has no constant term
                y = y.reshape(t, p, *y.shape[1:])
            tan[i] = y
        band[i] = out
        for k in list(tan):
            if last.get(k, k) <= i:
                del tan[k]


def _relu_tangent(node: LeakyRelu | Clip, z: torch.Tensor, dz: torch.Tensor, inplace: bool, rows) -> torch.Tensor:
    """The node's `tangent` of dz, which holds rows `rows` of the tangent (every row where None:
    only slopes that `bands.slopes_rowwise` allows are read by rows)."""
    return node.tangent(bands.crop(z, rows), dz, inplace=inplace)


def _flat(xs: list[torch.Tensor], t: int, p: int) -> list[torch.Tensor]:
    """Tangents (T, P or 1, ...) as (T * P, ...), the layers' probe axis: shared ones broadcast."""
    return [x.expand(t, p, *x.shape[2:]).reshape(t * p, *x.shape[2:]) for x in xs]


def _sum_of(node: Sum, terms: list[torch.Tensor], into: bool) -> torch.Tensor:
    """A Sum's linear part of tangents (T, P or 1, ...) that hold the same rows: `Sum.forward`
    without its expansion to the node's full shape, the same sums in the same order; with `into`,
    added into the first term, which the caller lets it overwrite."""
    t, p = terms[0].shape[0], max(x.shape[1] for x in terms)
    terms = [x.expand(t, p, *x.shape[2:]) for x in terms]
    if into:
        out = terms[0]
    elif node.coeffs[0] == 1.0:
        out = terms[0].clone(memory_format=torch.contiguous_format)
    else:
        out = node.coeffs[0] * terms[0]
    for c, x in zip(node.coeffs[1:], terms[1:]):
        out.add_(x if c == 1.0 else c * x)
    return out


def basis_chunks(network: Network, order: list[int], root: int, n_tan: int, n_dir: int) -> list[tuple[int, int]]:
    """(start, count) of each chunk of the identity's rows that an exact distance pushes through,
    at most n_dir at a time, the rows standing for node `root`'s values (`basis_node`). Where a
    convolution reads them as an image, a chunk
    is whole image rows of one channel, about BAND_DIRECTIONS of them: its tangents are then
    zero outside a band of a few rows, on which the layers run (bands.py). Chunks as large as
    the memory allows were 1.3-2x slower on 32x32 images: a chunk of 347 rows of the identity
    spans 11 image rows, or crosses into the next channel and spans them all."""
    image = _shape_of(network, root)
    if not any(_places_basis(network.nodes[i], root, image) for i in order):
        return [(d0, min(n_dir, n_tan - d0)) for d0 in range(0, n_tan, n_dir)]
    h, w = image[-2:]
    size = min(n_dir, max(w, BAND_DIRECTIONS))
    size = size // w * w if size >= w else size
    return [(c0 + d0, min(size, h * w - d0)) for c0 in range(0, n_tan, h * w) for d0 in range(0, h * w, size)]


def _places_basis(node, root: int, image: tuple[int, ...]) -> bool:
    """Whether node is a 2-D convolution of node `root`'s values, of shape `image`, one (C, H, W):
    its tangents of the identity's rows are placed (`conv2d_of_basis`), not multiplied."""
    return isinstance(node, Conv) and tuple(node.inputs) == (root,) and node.weight.dim() == 4 and bands.is_image(image)


def basis_node(network: Network, order: list[int], last: dict[int, int]) -> int:
    """The node whose values the exact distance's identity rows stand for: the input, or the last
    of the Reshapes and Transposes that come first, each alone reading the one before (a flat
    input made an image, or a channels-last export moving its input to channels first). Their
    identity rows are the input's, permuted; a squared gradient norm, the sum over all of them,
    is the same (to rounding: the terms come in another order), and a convolution after them
    reads rows of the identity of an image: placed, not multiplied, and the layers after it run
    on bands of rows."""
    root = 0
    for i in order[1:]:
        node = network.nodes[i]
        if not (isinstance(node, (Reshape, Transpose)) and tuple(node.inputs) == (root,) and last[root] == i):
            break
        root = i
    return root


def _shape_of(network: Network, i: int) -> tuple[int, ...]:
    """A probe's values at node i (the graph's input shape at the input)."""
    return tuple(network.nodes[i].shape) if i else tuple(network.graph_input_shape)


def _add_window_squares(pool: MaxPool, dz: torch.Tensor, picked: torch.Tensor, sq: torch.Tensor, rows=None) -> None:
    """sq (P, W, k) += Σ_t (d candidate - d winner)² for each candidate of each window, from the
    pool's input tangent dz (T, P or 1, ...) and its winners' tangent `picked` (T, P, *shape);
    padding gets 0 here, and no distance in `_nearest`. With `rows` (a, b), the windows of output
    rows a..b-1 only, `picked` holding those rows. The windows are copied once in window order
    where that pays (`MaxPool.copy_windows`); else they are read through views of dz (no copy of
    every window, which would be k / stride² times dz for overlapping windows): where a direction
    fills the cache, one direction at a time, all its taps in one pass over a view of its windows
    (measured on 2x2 pools: 1.2-2.5x faster from 32 Ki values per direction than tap by tap over
    chunks of directions; than tap by tap within a direction, `inception-cifar`'s distance, with
    a 3x3/1 pool of 32 channels at 32x32, 1.3x faster); else one kernel tap at a time."""
    t, p = picked.shape[:2]
    flat = dz.reshape(-1, *dz.shape[2:])
    k = sq.shape[-1]
    if rows is not None:
        sq = bands.window_rows(sq, pool.shape, rows)
    if pool.copy_windows:
        windows = pool.candidates(flat, value=0.0, rows=rows).reshape(t, dz.shape[1], -1, k)
        sq += _sum_squares(windows, picked.reshape(t, p, -1, 1)).reshape(sq.shape)
        return
    if dz.device.type == "cpu" and picked[0].numel() * k >= SQUARES_ONE_BY_ONE:
        # every tap of a direction's windows at once, through a view of its cells with the
        # kernel's axes first (the windows' last axis, contiguous, runs innermost): two passes
        # per direction
        windows = pool.window_view(flat, value=0.0, rows=rows)
        n_k = len(pool.kernel)
        windows = windows.reshape(t, dz.shape[1], *windows.shape[1:])  # (splits the first axis: a view)
        windows = windows.permute(0, *range(windows.dim() - n_k, windows.dim()), *range(1, windows.dim() - n_k))
        acc = dz.new_zeros(*windows.shape[1 : 1 + n_k], p, *windows.shape[2 + n_k :])
        diff = torch.empty_like(acc)
        for lo in range(t):
            torch.sub(windows[lo], picked[lo].reshape(p, *windows.shape[2 + n_k :]), out=diff)
            acc.addcmul_(diff, diff)
        sq += acc.reshape(k, p, -1).permute(1, 2, 0).reshape(sq.shape)
        return
    taps = [tap.reshape(t, dz.shape[1], *pool.shape) for tap in pool.taps(flat, value=0.0)]
    if rows is not None:
        taps = [tap[..., rows[0] : rows[1], :] for tap in taps]
    for o, tap in enumerate(taps):
        sq[..., o] += _sum_squares(tap, picked).reshape(sq.shape[:-1])


def _sum_squares(a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """The sum over directions (axis 0) of a² or of (a - b)², a chunk of directions at a time:
    the temporary then stays in the cache (about 2x faster than one of the whole tangent's size,
    on 1 000-23 000 units); one direction at a time where one fills the cache. On a GPU, whose
    kernels pay per launch, in one chunk. The sum of a² on CPU is numpy's sum of products, which
    reads a once as it lies, views included, with no temporary (measured: 1.0-2.6x faster than
    either way here, on 2-65 K values per direction; the same sums to rounding)."""
    if b is None and numpy_shares(a):
        values = a.numpy()
        return torch.from_numpy(np.einsum("i...,i...->...", values, values))
    shape = a.shape if b is None else torch.broadcast_shapes(a.shape, b.shape)
    total = a.new_zeros(shape[1:])
    if a.device.type == "cpu" and math.prod(shape[1:]) >= SQUARES_ONE_BY_ONE:
        # a direction fills the cache by itself: one fused multiply-add per direction, no
        # temporary of several directions to sum
        diff = None if b is None else a.new_empty(shape[1:])
        for lo in range(shape[0]):
            d = a[lo] if b is None else torch.sub(a[lo], b[lo], out=diff)
            total.addcmul_(d, d)
        return total
    step = max(1, SQUARES_BYTES // max(1, math.prod(shape[1:]) * a.element_size()))
    if a.device.type != "cpu":
        step = max(1, shape[0])
    chunk = a.new_empty(min(step, shape[0]), *shape[1:])
    for lo in range(0, shape[0], step):
        part = chunk[: min(step, shape[0] - lo)]
        if b is None:
            torch.mul(a[lo : lo + step], a[lo : lo + step], out=part)
        else:
            torch.sub(a[lo : lo + step], b[lo : lo + step], out=part)
            part.mul_(part)
        total += part.sum(0)
    return total


def _pools_of_shared_relus(network: Network, order: list[int], last: dict[int, int]) -> set[int]:
    """Max pools that alone read a LeakyRelu (ReLU, PReLU, Abs) whose input tangent is still
    shared by all points (no kink node before it): see `_pool_of_masked`. Alone: the ReLU's
    tangent then stays its unmasked input's, which any other reader would take for its own."""
    first = first_kink(network, order)
    out = set()
    for i in order:
        node = network.nodes[i]
        if isinstance(node, MaxPool) and len(node.inputs) == 1:
            q = node.inputs[0]
            if q == first and isinstance(network.nodes[q], LeakyRelu) and readers(network, order, q) == [i] and last[q] == i:
                out.add(i)
    return out


@dataclass
class _MaskedPool:
    """What `_pool_of_masked` needs of the points alone, made once per chunk of points instead of
    once per chunk of directions: each window's winner (its place in the window) and the ReLU's
    slope at each candidate (0 at padding), windows in output order."""

    code: torch.Tensor  # (P, W)
    f: torch.Tensor  # (P, W, k)
    size: tuple[int, int]  # the pool's input's height and width

    @staticmethod
    def of(pool: MaxPool, relu: LeakyRelu, z: torch.Tensor, code: torch.Tensor) -> "_MaskedPool":
        slope = torch.where(z > 0, torch.ones((), dtype=z.dtype, device=z.device), relu.slope.to(z.dtype))
        return _MaskedPool(code.long(), pool.candidates(torch.broadcast_to(slope, z.shape), value=0.0), tuple(z.shape[-2:]))


def _pool_of_masked(pool: MaxPool, dz: torch.Tensor, cells: torch.Tensor, masked: _MaskedPool, sq: torch.Tensor,
                    goes_on: bool, rows=None, first_row: int = 0) -> torch.Tensor | None:
    """The max pool's margins' squared gradients from the ReLU's input tangent dz (T, 1, ...),
    shared by all points, and each point's slopes f (P, ...) at z: candidate c and winner w
    (first maximum) of a window have tangents f_c dz_c and f_w dz_w, so

        Σ_t (f_c dz_c - f_w dz_w)² = f_c² G_cc + f_w² G_ww - 2 f_c f_w G_cw,  G = Σ_t dz dzᵀ,

    with G, each window's k x k Gram matrix, shared by all points: the points never carry a
    tangent of the ReLU's width (23 328 units for 10 outputs in a verification net). Exact where
    a slope is 0 (an inactive unit adds nothing); elsewhere the expansion loses about as many
    digits as |dz_c - dz_w| is smaller than |dz_c| (none for cells that see different inputs).
    `cells` are the winners' cells, `masked` the points' winners and slopes; with `rows`
    (a, b), only the windows of output rows a..b-1 (dz is zero outside them), and dz may hold the
    input rows from `first_row` on alone. Returns the pool's output tangent (T, P, *shape), or
    those rows of it, where a later node reads it."""
    win, f = masked.code, masked.f  # (P, W), (P, W, k)
    t, p, k = dz.shape[0], f.shape[0], f.shape[-1]
    if rows is not None:  # the windows of those rows only
        sq = bands.window_rows(sq, pool.shape, rows)
        win = bands.window_rows(win, pool.shape, rows).reshape(p, -1)
        f = bands.window_rows(f, pool.shape, rows).reshape(p, -1, k)
        cells = bands.window_rows(cells, pool.shape, rows).reshape(p, -1)
    windows = pool.candidates_by_window(dz.reshape(t, *dz.shape[2:]), value=0.0, rows=rows, first_row=first_row)  # (W, k, T)
    # a window's cells see few of the input directions after one convolution (its receptive
    # field): the products then run over the directions some cell of the window sees
    live = windows.bool().any(1)  # (W, T): nonzero (bool() reads -0.0 as 0, as ne(0) does, 1.4x faster)
    width = int(live.sum(1).max()) if live.numel() else 0
    if 4 * width <= t:
        seen = live.to(torch.uint8).argsort(dim=1, descending=True, stable=True)[:, :width]
        windows = windows.gather(2, seen.unsqueeze(1).expand(-1, windows.shape[1], -1))
    gram = torch.bmm(windows, windows.transpose(1, 2))  # (W, k, k)
    f_win = f.gather(2, win.unsqueeze(-1))  # (P, W, 1)
    diag = gram.diagonal(dim1=1, dim2=2)  # (W, k)
    g_win = gram.unsqueeze(0).expand(p, -1, -1, -1).gather(3, win[..., None, None].expand(-1, -1, k, 1))[..., 0]  # (P, W, k): G_cw
    g_ww = g_win.gather(2, win.unsqueeze(-1))  # (P, W, 1)
    sq += (f * f * diag + f_win * f_win * g_ww - 2 * f * f_win * g_win).clamp_(min=0).reshape(sq.shape)
    if not goes_on:
        return None
    height, width = masked.size
    if dz.shape[-2] != height:  # the winners' cells among the rows dz holds (every winner is one)
        plane, y = cells // (height * width), (cells // width) % height
        cells = (plane * dz.shape[-2] + y - first_row) * width + cells % width
    picked = dz.reshape(t, -1)[:, cells] * f_win[..., 0]
    if rows is None:
        return picked.reshape(t, p, *pool.shape)
    return picked.reshape(t, p, *pool.shape[:-2], rows[1] - rows[0], pool.shape[-1])


def _nearest(network, order, kinks, sq, n_points) -> list[NearestBoundary]:
    """The nearest constraint at each point. A unit or margin whose squared gradient is at most
    `g_floor`, the rounding floor of gradients (`zero_tolerance` x the largest gradient norm of
    any unit or margin there), is constant up to rounding: the same line computed along two paths
    (a window holding h and 3h - 2h), whose noisy value over noisy slope would be any distance.
    Like an exactly constant one, it bounds nothing."""
    dev = network.device
    g_max = torch.zeros(n_points, dtype=torch.float64, device=dev)
    for g2 in sq.values():
        if g2.numel():
            g_max = torch.maximum(g_max, g2.reshape(n_points, -1).amax(1).to(torch.float64))
    g_floor = g_max * zero_tolerance(network.dtype) ** 2
    best = torch.full((n_points,), math.inf, dtype=torch.float64, device=dev)
    best_node = torch.full((n_points,), -1, dtype=torch.long, device=dev)
    best_unit = torch.full((n_points,), -1, dtype=torch.long, device=dev)
    for i in order:
        if i not in kinks:
            continue
        node = network.nodes[i]
        if isinstance(node, UnitKink):  # every breakpoint of a unit shares the unit's gradient
            z = node.offsets(kinks[i]).to(torch.float64)
            g2 = sq[i].to(torch.float64).repeat(1, node.breaks)
            d = torch.where(g2 > g_floor[:, None], z.abs() / g2.sqrt(), math.inf)
            unit_of = None
        else:
            cand = node.candidates(kinks[i])
            win = cand.argmax(-1, keepdim=True)
            margin = (cand.gather(-1, win) - cand).to(torch.float64)
            g2 = sq[i].to(torch.float64)
            ok = torch.isfinite(cand) & (g2 > g_floor.reshape(-1, *[1] * (g2.dim() - 1)))
            ok &= torch.arange(cand.shape[-1], device=dev) != win
            d = torch.where(ok, margin / torch.where(ok, g2, 1.0).sqrt(), math.inf).reshape(n_points, -1)
            unit_of = cand.shape[-1]
        if d.shape[1] == 0:
            continue
        m, idx = d.min(1)
        if unit_of is not None:
            idx = idx // unit_of
        elif node.breaks > 1:
            idx = idx % node.units
        better = m < best
        best = torch.where(better, m, best)
        best_node = torch.where(better, torch.full_like(best_node, i), best_node)
        best_unit = torch.where(better, idx, best_unit)
    out = []
    for dist, node_id, unit in zip(best.tolist(), best_node.tolist(), best_unit.tolist()):
        if node_id < 0 or not math.isfinite(dist):
            out.append(NearestBoundary(None, None, None))
        else:
            out.append(NearestBoundary(float(dist), network.nodes[node_id].name, int(unit)))
    return out


def _basis(dim: int, start: int, count: int, network: Network, unread: bool = False) -> torch.Tensor:
    """Rows start..start+count of the identity (dim x dim), never the whole of it. `unread`:
    every layer reading them places them (`_places_basis`), knowing only which rows they are;
    then a stand-in of their shape, never written (their zeros took 1-4 % of an exact distance)."""
    if unread:
        return torch.zeros((), dtype=network.dtype, device=network.device).expand(count, dim)
    rows = torch.zeros(count, dim, dtype=network.dtype, device=network.device)
    idx = torch.arange(count, device=network.device)
    rows[idx, idx + start] = 1
    return rows


@torch.no_grad()
def boundary_distances(
    network: Network,
    points,
    *,
    max_memory: int | None = None,
    progress: Callable[[int], None] | None = None,
    directions: int | None = None,
    seed: int = 0,
) -> list[NearestBoundary]:
    """Distance from each point (P, *input_shape) to its activation region's boundary.

    Exact by default: the input basis goes through. With `directions=m`, the gradient norms are
    estimated from m seeded Gaussian projections instead (see `approx_relative_error`), for
    inputs too large for one tangent per input element. `progress(n)`, if given, is called with
    the number of points just finished.
    """
    x_all = check_finite(network.prepare(torch.as_tensor(points)), "points")
    n_total = x_all.shape[0]
    order = tangent_order(network)
    last = network.last_use(order)
    dim = math.prod(network.input_shape)
    pooled_ids = _pools_of_shared_relus(network, order, last)
    shared, paired = _chunk_bytes(network, order, pooled_ids)
    kept, passing = _point_bytes(network, order, pooled_ids)
    # (`min_memory`, from the counts made here once)
    check_fits(_least_bytes(shared, kept, passing), max_memory, network.device, "one point and one tangent direction of it")
    if max_memory is None:
        max_memory = default_max_memory(network.device, cpu_cap=128 << 20)
    root = basis_node(network, order, last)  # (an exact distance's identity rows stand for it)
    unread = all(_places_basis(network.nodes[r], root, _shape_of(network, root)) for r in readers(network, order, root))
    if directions is not None and directions < 1:
        raise BadOption("the number of distance directions must be at least 1")
    n_tan = dim if directions is None else directions  # tangents per point
    # many points per chunk (the layers before the first kink run once for all of them), and
    # chunks of at least 128 directions where the budget allows, for efficient matrix products
    # (a direction costs `shared` with one point, `paired` more per further point; each point
    # holds its own values through all the chunks, and more before and after them: `_point_bytes`)
    budget = int(max_memory)
    d = min(n_tan, 128, max(1, budget // (2 * shared)))
    n_pts = max(1, min(n_total, 1 + (budget - d * shared - kept) // max(1, d * paired + kept), budget // (kept + passing)))
    n_dir = min(n_tan, max(1, (budget - n_pts * kept) // (shared + (n_pts - 1) * paired)))
    results: list[NearestBoundary] = []
    for lo in range(0, n_total, n_pts):
        x = x_all[lo : lo + n_pts]
        p = x.shape[0]
        kinks = _forward_masks(network, order, last, x)
        codes = {i: network.nodes[i].winners(z) for i, z in kinks.items() if isinstance(network.nodes[i], MaxPool)}
        cells = {i: network.nodes[i].winner_cells(kinks[i], code) for i, code in codes.items()}
        pooled = {}
        for i in pooled_ids:
            relu = network.nodes[i].inputs[0]
            pooled[i] = _MaskedPool.of(network.nodes[i], network.nodes[relu], kinks[relu], codes[i])
        sq = {}
        for i, z in kinks.items():
            node = network.nodes[i]
            if isinstance(node, MaxPool):
                sq[i] = torch.zeros(node.candidates(z).shape, dtype=network.dtype, device=network.device)
            else:
                sq[i] = torch.zeros((p, z[0].numel()), dtype=network.dtype, device=network.device)
        if directions is None:
            for d0, cnt in basis_chunks(network, order, root, n_tan, n_dir):
                basis = _basis(dim, d0, cnt, network, unread)
                _accumulate(network, order, last, kinks, cells, pooled, basis, sq, start=d0, root=root)
        else:  # (drawn again for each chunk of points: only a chunk of them is held at a time)
            for chunk in gaussian_chunks(dim, directions, seed, n_dir):
                _accumulate(network, order, last, kinks, cells, pooled, chunk.to(dtype=network.dtype, device=network.device), sq)
        results.extend(_nearest(network, order, kinks, sq, p))
        if progress is not None:
            progress(p)
    return results
