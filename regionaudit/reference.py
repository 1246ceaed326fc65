"""`reference.init`: the audit's measurements repeated on the same architecture at initialisation.

K seeded re-initialisations (see `reinit.py`) are measured on the first segments and points of the
audit's own probes, so every trained number has a like-for-like reference: the same segments, the
same points, the same exact analyzers. It is kept small (20 segments, 10 points per seed by
default) so that it costs a fraction of the audit.
"""

from __future__ import annotations

import numpy as np
import torch

from regionaudit.analysis.deviation import absolute_deviation, deviation_norm
from regionaudit.analysis.density import trace_segments
from regionaudit.analysis.distance import boundary_distances
from regionaudit.analysis.profile import segment_profile
from regionaudit.analysis.stats import summary
from regionaudit.reinit import RECIPE, reinitialise

REFERENCE_SEGMENTS = 20
REFERENCE_POINTS = 10


def _summaries(regions, density, deviation, distance, neurons: int) -> dict:
    return {
        "density": {
            "summary": summary(regions),
            "per_length": summary([d for d in density if d is not None]),
            "regions_per_neuron": summary([r / neurons for r in regions]) if neurons else None,
        },
        "deviation": {"summary": summary([v for v in deviation if v is not None])},
        "distance": {
            "summary": summary([d for d in distance if d is not None]),
            "scaled_summary": summary([d * neurons for d in distance if d is not None]) if neurons else None,
        },
    }


def init_reference(imported, a: torch.Tensor, b: torch.Tensor, lengths: np.ndarray, points: torch.Tensor,
                   copies: int, seed: int, profile_segment: int | None, max_knots=None, max_memory=None,
                   directions: int | None = None) -> dict:
    """Measure `copies` re-initialisations on the first segments a[:20], b[:20] and points[:10],
    with the boundary-distance method the audit used (`directions`: None for exact)."""
    net = imported.network
    op_types = [n.get("op_type", "") for n in imported.nodes] or [""] * len(net.nodes)
    m, p = min(REFERENCE_SEGMENTS, len(a)), min(REFERENCE_POINTS, len(points))
    neurons = net.neurons
    seeds, pooled = [], {"regions": [], "density": [], "deviation": [], "distance": []}
    profile = None
    for k in range(copies):
        copy = reinitialise(net, op_types, [seed, 13, k])
        traces = trace_segments(copy, a[:m], b[:m], max_knots=max_knots, max_memory=max_memory) if m else []
        regions = [tr.regions for tr in traces]
        density = [float(r / length) if length > 0 else None for r, length in zip(regions, lengths[:m])]
        deviation = [
            None if tr.truncated else float(deviation_norm(absolute_deviation(tr, float(length))))
            for tr, length in zip(traces, lengths[:m])
        ]
        dists = boundary_distances(copy, points[:p], max_memory=max_memory, directions=directions, seed=seed) if p else []
        distance = [d.distance for d in dists]
        knots: dict[str, int] = {}
        for tr in traces:
            for name, v in tr.knots_per_layer.items():
                knots[name] = knots.get(name, 0) + v
        seeds.append({
            "seed": [seed, 13, k],
            # per probe, in probe order (the first segments and points of the audit)
            "segments": {"regions": regions, "density": density, "deviation": deviation,
                         "truncated": [bool(tr.truncated) for tr in traces]},
            "points": {"distance": distance, "nearest_node": [d.node for d in dists]},
            "knots_per_layer": knots,
            **_summaries(regions, density, deviation, distance, neurons),
        })
        for key, values in (("regions", regions), ("density", density), ("deviation", deviation), ("distance", distance)):
            pooled[key] += values
        if k == 0 and profile_segment is not None and profile_segment < m:
            profile = segment_profile(copy, traces[profile_segment], profile_segment)
    return {
        "copies": copies,
        "segments": m,
        "points": p,
        "recipe": {**RECIPE, "seeds": [s["seed"] for s in seeds],
                   "distance": "exact" if directions is None else f"approximate, {directions} directions (as the audit)"},
        "per_seed": seeds,
        "pooled": _summaries(pooled["regions"], pooled["density"], pooled["deviation"], pooled["distance"], neurons),
        "profile": profile,
    }


def ratio_to_init(trained_regions: list[int], reference: dict, cut: set[int] = frozenset()) -> list[float]:
    """Per reference segment: trained regions / mean of the init regions on the same segment.
    Segments in `cut`, which --max-knots cut short in the trained model or in a copy
    (`result.reference_cut_short`), are left out (their counts are lower bounds, so their ratio
    would mean nothing)."""
    seeds = reference["per_seed"]
    out = []
    for i in range(reference["segments"]):
        if i in cut:
            continue
        mean = float(np.mean([s["segments"]["regions"][i] for s in seeds]))
        out.append(trained_regions[i] / mean)
    return out
