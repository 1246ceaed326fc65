"""The same architecture at initialisation: a re-initialised copy of an imported network.

Hanin & Rolnick (2019a) measure regions at initialisation with He-normal weights and biases of small
variance; comparing a trained model with that reference says whether training made the function
more or less complex than the architecture gives by default. Only what training learns is redrawn:
dense and conv weights and biases, and batch-norm scale/shift (set to identity). Fixed linear maps
(pooling, padding, reshapes) and input normalisation written as Sub/Div of constants are kept,
since they are part of the architecture and of the preprocessing.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch

from regionaudit import ir

BIAS_VARIANCE = 1e-6

RECIPE = {
    "weights": "He-normal: mean 0, variance 2 / fan-in (dense, conv, transposed conv and einsum constants)",
    "biases": f"normal: mean 0, variance {BIAS_VARIANCE:g}",
    "batch_norm": "scale 1, shift 0 (BatchNormalization nodes only)",
    "kept": "input Sub/Mul/Div/Add by constants, pooling, padding, reshapes, activation slopes",
    "source": "Hanin & Rolnick 2019a",
}


LEARNED = (ir.MatMul, ir.Conv, ir.ConvTranspose, ir.Einsum)


def fan_in(node: ir.Node) -> float:
    """Inputs that feed one output unit: rows of a right-hand dense weight, columns of a left-hand one,
    (input channels per group × kernel) for a convolution, the same over the strides (on average)
    for a transposed one, and the summed-over sizes of an einsum's constant."""
    if isinstance(node, ir.Conv):
        return math.prod(node.weight.shape[1:])
    if isinstance(node, ir.ConvTranspose):
        per_group = node.weight.shape[0] // node.groups
        return max(1.0, per_group * math.prod(node.weight.shape[2:]) / math.prod(node.strides or (1,)))
    if isinstance(node, ir.Einsum):
        terms, out = node.equation.split("->")
        w_term = terms.split(",")[1 if node.data_first else 0]
        return max(1, math.prod(n for c, n in zip(w_term, node.weight.shape) if c not in out))
    w = node.weight
    if w.dim() == 1:
        return w.shape[0]
    return w.shape[-1] if node.weight_left else w.shape[-2]


def _normal(rng: np.random.Generator, like: torch.Tensor, std: float) -> torch.Tensor:
    return torch.from_numpy(rng.standard_normal(tuple(like.shape)) * std).to(dtype=like.dtype, device=like.device)


def reinitialise(network: ir.Network, op_types: list[str], seed) -> ir.Network:
    """A copy of `network` with fresh He-normal weights (seeded by numpy's PCG64, so the same seed
    gives the same weights on every machine); `op_types[i]` is node i's ONNX op type."""
    rng = np.random.default_rng(seed)
    net = copy.deepcopy(network)
    for node, op in zip(net.nodes, op_types):
        if isinstance(node, LEARNED) and getattr(node, "weight", None) is not None:
            node.weight = _normal(rng, node.weight, math.sqrt(2.0 / fan_in(node)))
            if getattr(node, "bias", None) is not None:
                node.bias = _normal(rng, node.bias, math.sqrt(BIAS_VARIANCE))
        elif isinstance(node, ir.Scale) and op == "BatchNormalization":
            node.mul = None if node.mul is None else torch.ones_like(node.mul)
            node.add = None if node.add is None else torch.zeros_like(node.add)
    return net
