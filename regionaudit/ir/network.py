"""The network: nodes in topological order, and the forward pass over them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from regionaudit.errors import BadOption
from regionaudit.ir.node import Node
from regionaudit.ir.windows import MaxPool


@dataclass(eq=False)
class Network:
    """A ReLU network: `nodes[0]` is the input; `output` is the id of the analysed node.

    `input_shape` is what a probe looks like (batch axis left out); `graph_input_shape` is the
    shape the ONNX graph sees at batch size 1 (equal to `input_shape` or with a leading 1).
    """

    nodes: list[Node]
    input_shape: tuple[int, ...]
    graph_input_shape: tuple[int, ...]
    output: int
    input_name: str = ""
    output_name: str = ""
    notes: list[str] = field(default_factory=list)
    dtype: torch.dtype = torch.float64
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self):
        self._check_chain()

    def _check_chain(self) -> None:
        for i, node in enumerate(self.nodes):
            if any(j >= i or j < 0 for j in node.inputs):
                raise ValueError(f"node {node.name!r} reads a node that is not before it")

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.nodes[self.output].shape

    @property
    def probe_output_shape(self) -> tuple[int, ...]:
        """What one probe's output looks like, the batch axis left out as in `input_shape`."""
        shape = self.output_shape
        batched = len(self.graph_input_shape) == len(self.input_shape) + 1
        return shape[1:] if batched and len(shape) >= 2 and shape[0] == 1 else shape

    @property
    def n_outputs(self) -> int:
        return math.prod(self.output_shape)

    @property
    def kink_ids(self) -> list[int]:
        return [i for i, n in enumerate(self.nodes) if n.is_kink]

    @property
    def kink_names(self) -> list[str]:
        """The kink nodes' names: the keys of `knots_per_layer`."""
        return [self.nodes[i].name for i in self.kink_ids]

    @property
    def neurons(self) -> int:
        return sum(n.units for n in self.nodes)

    @property
    def maxpool_windows(self) -> int:
        return sum(n.windows for n in self.nodes if isinstance(n, MaxPool))

    def macs(self) -> int:
        return sum(n.macs([self.nodes[j].shape for j in n.inputs]) for n in self.nodes)

    def last_use(self, order: list[int] | None = None) -> dict[int, int]:
        """For each node in `order` (default: all), the last node in `order` that reads it; the
        output counts as read last. Values are freed after their last use to bound memory."""
        order = list(range(len(self.nodes))) if order is None else order
        last = {i: i for i in order}
        for i in order:
            for j in self.nodes[i].inputs:
                last[j] = max(last.get(j, j), i)
        last[self.output] = len(self.nodes)
        return last

    def to(self, dtype: torch.dtype | None = None, device: str | torch.device | None = None) -> "Network":
        dtype = dtype or self.dtype
        device = torch.device(device) if device is not None else self.device
        for node in self.nodes:
            node.convert(dtype, device)
        self.dtype, self.device = dtype, device
        return self

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Probes (P, *input_shape) or flat rows (P, prod), a tensor or anything `torch.as_tensor`
        reads (a numpy array), as the graph input (P, *graph shape)."""
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(x)
        if x.dim() == 1 and math.prod(self.input_shape) == x.shape[0]:
            x = x.unsqueeze(0)
        if math.prod(x.shape[1:]) != math.prod(self.input_shape):
            raise BadOption(f"probe shape {tuple(x.shape[1:])} does not match input shape {self.input_shape}")
        return x.to(dtype=self.dtype, device=self.device).reshape(x.shape[0], *self.graph_input_shape)

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor | None]:
        """Every node's value on probes x (kept, for analyses that need each layer)."""
        values: list[torch.Tensor | None] = [None] * len(self.nodes)
        values[0] = self.prepare(x)
        for i in range(1, len(self.nodes)):
            node = self.nodes[i]
            values[i] = node.forward([values[j] for j in node.inputs])
        return values

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs (P, n_outputs) for probes x."""
        last = self.last_use()
        values: list[torch.Tensor | None] = [None] * len(self.nodes)
        values[0] = self.prepare(x)
        n_probes = values[0].shape[0]  # x may be one flat probe (1-D): count after prepare
        for i in range(1, len(self.nodes)):
            node = self.nodes[i]
            values[i] = node.forward([values[j] for j in node.inputs])
            for j in node.inputs:
                if last[j] == i:
                    values[j] = None
        return values[self.output].reshape(n_probes, -1)
