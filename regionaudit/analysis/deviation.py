"""Absolute deviation (Gamba et al. 2022, appendix D), integrated exactly piece by piece."""

from __future__ import annotations

import math

import torch

from regionaudit.analysis.density import SegmentTrace


def absolute_deviation(trace: SegmentTrace, length: float) -> torch.Tensor:
    """Per output k: D_k = length * ∫_0^1 |f_k(x(t)) - ((1 - t) f_k(a) + t f_k(b))| dt.

    The residual r(t) is affine between knots, so each piece [t_i, t_{i+1}] with end values
    r0, r1 and length h integrates to h (|r0| + |r1|) / 2 when r0 r1 >= 0, and to
    h (r0² + r1²) / (2 |r0 - r1|) when the residual changes sign inside (split at its zero).
    Returns a float64 tensor (n_outputs,) on the trace's device.
    """
    t = trace.t.to(torch.float64)
    f = trace.outputs.to(torch.float64)
    if t.shape[0] < 2:
        return torch.zeros(f.shape[-1], dtype=torch.float64, device=f.device)
    # f(a) + t (f(b) - f(a)) is f(a) itself where the output does not change, which the
    # rounding of (1 - t) f(a) + t f(b) would leave as noise in a zero residual
    chord = f[0] + t[:, None] * (f[-1] - f[0])
    r = f - chord
    r[0] = 0.0  # exactly zero at the endpoints by construction
    r[-1] = 0.0
    r0, r1 = r[:-1], r[1:]
    h = (t[1:] - t[:-1])[:, None]
    # signs and shares rather than products and squares, which underflow for residuals near 1e-160
    same = torch.sign(r0) * torch.sign(r1) >= 0
    a0, a1 = r0.abs(), r1.abs()
    total = torch.where(same, torch.ones_like(r0), a0 + a1)  # = |r0 - r1| where the sign changes
    piece = torch.where(same, h * (a0 + a1) / 2, h * (a0 * (a0 / total) + a1 * (a1 / total)) / 2)
    return float(length) * piece.sum(0)


def deviation_norm(per_output) -> float:
    """The paper's scalar per path: the L2 norm over outputs (math.hypot, whose scaling keeps
    deviations near 1e-160 or 1e160 from underflowing or overflowing in their squares)."""
    v = torch.as_tensor(per_output, dtype=torch.float64)
    return float(math.hypot(*v.reshape(-1).tolist()))
