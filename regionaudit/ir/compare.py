"""Elementwise tests of a float tensor that make one byte per element: the crossing scans' signs.

torch runs its float-to-bool kernels on CPU one element at a time, while numpy's are vectorised
(measured on 1-12 M float64 elements, one thread: signbit and `<` 1.5-2.5x faster). A CPU tensor
and its numpy array share memory, so the numpy kernel reads the tensor as it lies and its result
is taken back without a copy. Both are exact bit tests or comparisons: the same booleans.
"""

from __future__ import annotations

import numpy as np
import torch

_NUMPY_FLOATS = (torch.float32, torch.float64)


def numpy_shares(x: torch.Tensor) -> bool:
    """Whether numpy's kernels may read x as it lies: a CPU float tensor outside autograd."""
    return x.device.type == "cpu" and x.dtype in _NUMPY_FLOATS and not x.requires_grad


def sign_bits(x: torch.Tensor) -> torch.Tensor:
    """`torch.signbit(x)`: True where x < 0, and at -0.0."""
    if not numpy_shares(x):
        return torch.signbit(x)
    return torch.from_numpy(np.signbit(x.numpy()))


def less_into(x: torch.Tensor, bound: torch.Tensor | float, out: torch.Tensor) -> None:
    """`torch.lt(x, bound, out=out)` (bound a number or a tensor broadcast against x)."""
    if not (numpy_shares(x) and out.device.type == "cpu" and (not torch.is_tensor(bound) or numpy_shares(bound))):
        torch.lt(x, bound, out=out)
        return
    np.less(x.numpy(), bound.numpy() if torch.is_tensor(bound) else bound, out=out.numpy())
