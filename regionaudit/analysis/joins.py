"""Joining the pieces of a segment that was traced in several passes (density.py): a join is a
knot where both pieces hold it, or where some kink node crosses just beside it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from regionaudit.analysis._common import bounded_by_inputs, magnitude, zero_tolerance
from regionaudit.analysis.crossings import maxpool_crossings, relu_crossings
from regionaudit.ir import MaxPool, Network, UnitKink


@dataclass
class Piece:
    t0: float
    t: torch.Tensor
    outputs: torch.Tensor
    src: torch.Tensor  # (K,) id of the kink node that made each knot, -1 for piece endpoints
    truncated: bool


def _kink_inputs(network: Network, order: list[int], x: torch.Tensor):
    """Each kink node's input at points x (P, ...), and the rounding floor there (as in a pass)."""
    values = {0: network.prepare(x)}
    last = network.last_use(order)
    mag = magnitude(values[0])
    inputs, floors = {}, {}
    for i in order[1:]:
        node = network.nodes[i]
        xs = [values[k] for k in node.inputs]
        if node.is_kink:
            inputs[i], floors[i] = xs[0], mag * zero_tolerance(network.dtype)
        values[i] = node.forward(xs)
        if not bounded_by_inputs(node):
            mag = torch.maximum(mag, magnitude(values[i]))
        for k in list(values):
            if last.get(k, k) <= i:
                del values[k]
    return inputs, floors


def _crosses(node: UnitKink | MaxPool, z: torch.Tensor, floor: torch.Tensor) -> bool:
    """Whether a kink node sees a crossing between two points z (2, ...), read as a pass reads one."""
    ok = torch.ones(1, dtype=torch.bool, device=z.device)
    floor = floor.max().reshape(1)
    if isinstance(node, UnitKink):
        j, _ = relu_crossings(node.offsets(z), ok, floor)
    else:
        j, _, _, _ = maxpool_crossings(node, z, ok, floor)
    return j.numel() > 0


def stitch(
    network: Network, order: list[int], pieces: list[Piece], a: torch.Tensor, b: torch.Tensor, cap_points: int = 1 << 16
) -> Piece:
    """Join a segment's pieces. Where both pieces hold the same knot made by a kink node (a pass
    split its knots into groups there), that is the knot. Elsewhere (a cut between knots) the join
    is a knot iff some kink node crosses between points just left and right of it; these joins
    are checked `cap_points // 2` at a time (memory bound)."""
    pieces = sorted(pieces, key=lambda p: p.t0)
    if len(pieces) == 1:
        return pieces[0]
    cuts = [q for q, right in enumerate(pieces[1:]) if int(right.src[0]) < 0]  # not at a shared knot
    sources: dict[int, int] = {}
    step = max(1, cap_points // 2)
    for lo in range(0, len(cuts), step):
        mids = []
        for q in cuts[lo : lo + step]:
            left, right = pieces[q], pieces[q + 1]
            mids.append((left.t[-2] + left.t[-1]) / 2)
            mids.append((right.t[0] + right.t[1]) / 2)
        tm = torch.stack(mids).to(network.dtype)[:, None]
        x = (1 - tm) * a.reshape(1, -1) + tm * b.reshape(1, -1)
        inputs, floors = _kink_inputs(network, order, x)
        for n, q in enumerate(cuts[lo : lo + step]):
            pair = slice(2 * n, 2 * n + 2)  # points just left and right of the join
            sources[q] = next((i for i in inputs if _crosses(network.nodes[i], inputs[i][pair], floors[i][pair])), -1)
    ts, outs, srcs = [pieces[0].t], [pieces[0].outputs], [pieces[0].src]
    for q, right in enumerate(pieces[1:]):
        if q not in sources:
            pass  # a shared knot: the left piece ends at it, with its source
        elif sources[q] >= 0:
            srcs[-1] = srcs[-1].clone()
            srcs[-1][-1] = sources[q]
        else:  # the join is inside a region: not a knot
            ts[-1], outs[-1], srcs[-1] = ts[-1][:-1], outs[-1][:-1], srcs[-1][:-1]
        ts.append(right.t[1:])
        outs.append(right.outputs[1:])
        srcs.append(right.src[1:])
    return Piece(
        pieces[0].t0, torch.cat(ts), torch.cat(outs), torch.cat(srcs), any(p.truncated for p in pieces)
    )
