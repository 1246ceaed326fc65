"""The base node every IR node extends, and the graph input."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch



def flat_spatial(x: torch.Tensor, n_spatial: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Fold every axis before (channels, *spatial) into one batch axis for torch's conv/pool."""
    lead = x.shape[: x.dim() - n_spatial - 1]
    return x.reshape(-1, *x.shape[x.dim() - n_spatial - 1 :]), tuple(lead)


@dataclass(eq=False)
class Node:
    """One IR node. `inputs` are ids of earlier nodes; `shape` excludes the probe axis."""

    name: str
    inputs: tuple[int, ...]
    shape: tuple[int, ...]
    kind: ClassVar[str] = "node"
    is_kink: ClassVar[bool] = False

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def linear(self, xs: list[torch.Tensor]) -> torch.Tensor:
        """The linear part of an affine node: `forward` without its constant term."""
        return self.forward(xs)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in vars(self).items() if isinstance(v, torch.Tensor)}

    def convert(self, dtype: torch.dtype, device: torch.device) -> None:
        for key, value in self.tensors().items():
            setattr(self, key, value.to(dtype=dtype, device=device))

    @property
    def units(self) -> int:
        """ReLU-type units (one per output element of a LeakyRelu node, 0 elsewhere)."""
        return 0

    def macs(self, in_shapes: list[tuple[int, ...]]) -> int:
        """Multiply-adds of one forward pass (probe count 1)."""
        return math.prod(self.shape)

    def describe(self) -> str:
        return ""


@dataclass(eq=False)
class Input(Node):
    kind: ClassVar[str] = "input"

    def forward(self, xs):
        return xs[0]

    def macs(self, in_shapes):
        return 0
