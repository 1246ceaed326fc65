"""Which boundary-distance method an audit uses, recorded in its settings with a note.

Chosen from the option and the input size alone (never from a time estimate), so the same model
and options give the same JSON on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from regionaudit.analysis.distance import AUTO_APPROX_INPUT, approx_relative_error, choose_method
from regionaudit.errors import BadOption


@dataclass
class DistanceMethod:
    name: str  # "exact" or "approx"
    directions: int | None  # Gaussian projections per point (approx only)
    relative_error: float | None  # 3σ, per unit (approx only)


def distance_settings(opts, network, settings: dict, notes: list[str]) -> DistanceMethod:
    """Resolve `--distance` for this network; record it in `settings` and explain it in `notes`."""
    size = math.prod(network.input_shape)
    name = choose_method(opts.distance, size)
    m = opts.distance_directions
    if m is None or m < 1:
        raise BadOption(f"--distance-directions must be >= 1, got {m}")
    settings["distance"] = opts.distance
    settings["distance_directions"] = m  # the option; used only when the method is approx
    if name == "exact":
        return DistanceMethod("exact", None, None)
    err = approx_relative_error(m)
    why = (
        f"the input has {size} elements, more than {AUTO_APPROX_INPUT} (--distance auto)"
        if opts.distance == "auto"
        else "--distance approx"
    )
    notes.append(
        f"Boundary distances are approximate ({why}): gradient norms from {m} seeded Gaussian projections, "
        f"each unit's distance within ±{100 * err:.0f} % (3σ); use --distance exact for exact values."
    )
    return DistanceMethod("approx", m, err)
