"""A plain evaluator of the IR for checking that speed-ups change no number.

Every node is evaluated by the most direct torch call on the whole batch (convolutions with
explicit padding and one call over all probes, ReLU as `where`), independent of the shortcuts in
`regionaudit.ir`. Boundary distances come from autograd's full Jacobian of this evaluator.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from regionaudit import ir


def _pad(x: torch.Tensor, pads) -> torch.Tensor:
    n = len(pads) // 2
    torch_pads: list[int] = []
    for i in reversed(range(n)):
        torch_pads += [pads[i], pads[i + n]]
    return F.pad(x, torch_pads) if any(torch_pads) else x


def _node(node: ir.Node, xs: list[torch.Tensor]) -> torch.Tensor:
    if isinstance(node, ir.Conv):
        n = node.weight.dim() - 2
        x = xs[0]
        lead = x.shape[: x.dim() - n - 1]
        x = _pad(x.reshape(-1, *x.shape[x.dim() - n - 1 :]), node.pads)
        conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[n]
        y = conv(x, node.weight, None, node.strides, 0, node.dilations, node.groups)
        if node.bias is not None:
            y = y + node.bias.reshape(-1, *([1] * n))
        return y.reshape(*lead, *y.shape[1:])
    if isinstance(node, ir.LeakyRelu):
        return torch.where(xs[0] > 0, xs[0], node.slope * xs[0])
    if isinstance(node, ir.MatMul):
        y = node.weight @ xs[0] if node.weight_left else xs[0] @ node.weight
        return y if node.bias is None else y + node.bias
    return node.forward(xs)


def forward_all(net: ir.Network, x: torch.Tensor) -> list[torch.Tensor]:
    values = [net.prepare(x)]
    for node in net.nodes[1:]:
        values.append(_node(node, [values[j] for j in node.inputs]))
    return values


def forward(net: ir.Network, x: torch.Tensor) -> torch.Tensor:
    return forward_all(net, x)[net.output].reshape(x.shape[0], -1)


def distance(net: ir.Network, x: torch.Tensor) -> tuple[float, str | None, int | None]:
    """min |z_i| / ‖∇z_i‖ over units (and MaxPool margins), with the full Jacobian."""
    best: tuple[float, str | None, int | None] = (math.inf, None, None)
    for i in net.kink_ids:
        node = net.nodes[i]

        def pre(xx, node=node):
            return forward_all(net, xx.unsqueeze(0))[node.inputs[0]][0]

        z = pre(x)
        jac = torch.autograd.functional.jacobian(pre, x).reshape(z.numel(), -1)
        if isinstance(node, ir.UnitKink):  # every breakpoint of a unit shares its gradient
            g = jac.norm(dim=1).repeat(node.breaks)
            off = node.offsets(z.unsqueeze(0))[0]
            d = torch.where(g > 0, off.abs() / g, math.inf)
            m, u = d.min(0)
            if float(m) < best[0]:
                best = (float(m), node.name, int(u) % z.numel())
        else:
            cand = node.candidates(z.unsqueeze(0))[0]
            where = node.candidates(torch.arange(z.numel(), dtype=torch.float64).reshape(1, *z.shape))[0]
            for w in range(cand.shape[0]):
                win = int(cand[w].argmax())
                for j in range(cand.shape[1]):
                    if j == win or not torch.isfinite(cand[w, j]):
                        continue
                    g = (jac[int(where[w, win])] - jac[int(where[w, j])]).norm()
                    if g > 0 and float((cand[w, win] - cand[w, j]) / g) < best[0]:
                        best = (float((cand[w, win] - cand[w, j]) / g), node.name, w)
    return best
