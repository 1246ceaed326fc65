"""Random small IR networks for the analysis tests, built directly from regionaudit.ir classes.

Kinds: "mlp", "cnn_avg" (conv + average pooling), "cnn_max" (conv + overlapping, padded max
pooling), "resnet" (Sum skip connections + BN-like Scale), "concat" (two branches joined by
Concat), "cnn_concat" (channel Concat + Transpose), "leaky" / "prelu" (slopes). Every network is
float64 on CPU unless converted with `Network.to`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from regionaudit import ir

KINDS = ["mlp", "leaky", "prelu", "cnn_avg", "cnn_max", "resnet", "concat", "cnn_concat", "mlp_max"]
# nets whose last kink node is wide next to the outputs: the density computes most of its knots'
# outputs from the crossings (analysis/tail.py)
TAIL_KINDS = ["tail_avg", "tail_prelu", "tail_clip", "tail_max", "tail_max_leaky"]


class Builder:
    def __init__(self, input_shape: tuple[int, ...], seed: int):
        self.gen = torch.Generator().manual_seed(seed)
        self.input_shape = tuple(input_shape)
        self.nodes: list[ir.Node] = [ir.Input("input", (), self.input_shape)]

    # -- plumbing
    def _add(self, node: ir.Node) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    def shape(self, x: int) -> tuple[int, ...]:
        return self.nodes[x].shape

    def randn(self, *shape, std=1.0) -> torch.Tensor:
        return torch.randn(*shape, generator=self.gen, dtype=torch.float64) * std

    def name(self, prefix: str) -> str:
        return f"{prefix}_{len(self.nodes)}"

    # -- affine nodes
    def dense(self, x: int, n_out: int) -> int:
        (n_in,) = self.shape(x)
        w = self.randn(n_in, n_out, std=math.sqrt(2.0 / n_in))
        b = self.randn(n_out, std=0.3)
        return self._add(ir.MatMul(self.name("Gemm"), (x,), (n_out,), weight=w, bias=b))

    def conv(self, x: int, c_out: int, k: int, stride: int = 1, pad: int = 0, dil: int = 1, groups: int = 1) -> int:
        c_in, h, w = self.shape(x)
        weight = self.randn(c_out, c_in // groups, k, k, std=math.sqrt(2.0 / (c_in // groups * k * k)))
        bias = self.randn(c_out, std=0.3)
        oh = (h + 2 * pad - dil * (k - 1) - 1) // stride + 1
        ow = (w + 2 * pad - dil * (k - 1) - 1) // stride + 1
        return self._add(
            ir.Conv(
                self.name("Conv"), (x,), (c_out, oh, ow), weight=weight, bias=bias,
                strides=(stride, stride), pads=(pad, pad, pad, pad), dilations=(dil, dil), groups=groups,
            )
        )

    def avgpool(self, x: int, k: int, stride: int, pad: int = 0) -> int:
        c, h, w = self.shape(x)
        ones = torch.ones(1, 1, h, w, dtype=torch.float64)
        divisor = F.avg_pool2d(ones, k, stride, pad, count_include_pad=True) * (k * k)
        divisor = divisor[0, 0]
        return self._add(
            ir.AvgPool(
                self.name("AveragePool"), (x,), (c, *divisor.shape), kernel=(k, k), strides=(stride, stride),
                pads=(pad, pad, pad, pad), divisor=divisor,
            )
        )

    def maxpool(self, x: int, k: int, stride: int, pad: int = 0, ceil: bool = False) -> int:
        shape = self.shape(x)
        n = len(shape) - 1
        dummy = torch.zeros(1, *shape, dtype=torch.float64)
        pool = {1: F.max_pool1d, 2: F.max_pool2d}[n]
        out = pool(dummy, k, stride, pad, 1, ceil_mode=ceil)
        return self._add(
            ir.MaxPool(
                self.name("MaxPool"), (x,), tuple(out.shape[1:]), kernel=(k,) * n, strides=(stride,) * n,
                pads=(pad,) * (2 * n), dilations=(1,) * n, ceil_mode=ceil,
            )
        )

    def scale(self, x: int) -> int:
        shape = self.shape(x)
        c = shape[0]
        extra = [1] * (len(shape) - 1)
        mul = (0.5 + self.randn(c).abs()).reshape(c, *extra)
        add = self.randn(c, std=0.3).reshape(c, *extra)
        return self._add(ir.Scale(self.name("BatchNormalization"), (x,), shape, mul=mul, add=add))

    def sum(self, x: int, y: int, coeffs=(1.0, 1.0)) -> int:
        return self._add(ir.Sum(self.name("Add"), (x, y), self.shape(x), coeffs=tuple(coeffs)))

    def concat(self, xs: list[int], axis: int) -> int:
        shapes = [self.shape(x) for x in xs]
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return self._add(ir.Concat(self.name("Concat"), tuple(xs), tuple(out), axis=axis))

    def reshape(self, x: int, shape: tuple[int, ...]) -> int:
        assert math.prod(shape) == math.prod(self.shape(x))
        return self._add(ir.Reshape(self.name("Reshape"), (x,), tuple(shape)))

    def flatten(self, x: int) -> int:
        return self.reshape(x, (math.prod(self.shape(x)),))

    def transpose(self, x: int, perm: tuple[int, ...]) -> int:
        shape = self.shape(x)
        return self._add(ir.Transpose(self.name("Transpose"), (x,), tuple(shape[p] for p in perm), perm=perm))

    # -- kinks
    def relu(self, x: int, slope: float | str = 0.0) -> int:
        shape = self.shape(x)
        if slope == "prelu":
            c = shape[0]
            s = (self.randn(c).abs() * 0.3).reshape(c, *([1] * (len(shape) - 1)))
            op = "PRelu"
        else:
            s = torch.tensor(float(slope), dtype=torch.float64)
            op = "Relu" if slope == 0.0 else "LeakyRelu"
        return self._add(ir.LeakyRelu(self.name(op), (x,), shape, slope=s, op_type=op))

    def clip(self, x: int, lo: float, hi: float) -> int:
        shape = self.shape(x)
        full = torch.ones(shape, dtype=torch.float64)
        return self._add(ir.Clip(self.name("Clip"), (x,), shape, lo=full * lo, hi=full * hi))

    def network(self, out: int) -> ir.Network:
        return ir.Network(
            nodes=self.nodes, input_shape=self.input_shape, graph_input_shape=self.input_shape, output=out,
            input_name="input", output_name=self.nodes[out].name,
        )


def mlp(seed: int, in_dim: int = 4, widths=(10, 10), n_out: int = 3, slope: float | str = 0.0) -> ir.Network:
    g = Builder((in_dim,), seed)
    x = 0
    for w in widths:
        x = g.relu(g.dense(x, w), slope)
    return g.network(g.dense(x, n_out))


def cnn(seed: int, pool: str = "avg", in_shape=(2, 7, 7), channels=(3, 4), n_out: int = 3) -> ir.Network:
    g = Builder(in_shape, seed)
    x = g.relu(g.conv(0, channels[0], 3, pad=1))
    if pool == "avg":
        x = g.avgpool(x, 2, 2, pad=1)
    else:  # overlapping windows with -inf padding, ceil mode
        x = g.maxpool(x, 3, 2, pad=1, ceil=True)
    x = g.relu(g.conv(x, channels[1], 2, stride=1), 0.1)
    if pool == "max":
        x = g.maxpool(x, 2, 1)
    else:
        x = g.avgpool(x, 2, 1)
    return g.network(g.dense(g.flatten(x), n_out))


def resnet(seed: int, in_dim: int = 4, width: int = 8, blocks: int = 2, n_out: int = 3) -> ir.Network:
    g = Builder((in_dim,), seed)
    x = g.relu(g.dense(0, width))
    for _ in range(blocks):
        y = g.relu(g.scale(g.dense(x, width)))
        y = g.dense(y, width)
        x = g.relu(g.scale(g.sum(x, y, (1.0, -0.7))))
    return g.network(g.dense(x, n_out))


def concat_net(seed: int, in_dim: int = 4, n_out: int = 2) -> ir.Network:
    g = Builder((in_dim,), seed)
    p = g.relu(g.dense(0, 6))
    q = g.relu(g.dense(0, 5), 0.2)
    x = g.concat([p, q, 0], axis=0)  # the input itself joins as a skip branch
    x = g.relu(g.dense(x, 8))
    return g.network(g.dense(x, n_out))


def cnn_concat(seed: int, in_shape=(2, 5, 5), n_out: int = 2) -> ir.Network:
    g = Builder(in_shape, seed)
    p = g.relu(g.conv(0, 2, 3, pad=1), "prelu")
    q = g.relu(g.conv(0, 2, 1))
    x = g.concat([p, q], axis=0)
    x = g.transpose(x, (1, 2, 0))  # HWC
    x = g.transpose(g.relu(g.scale(g.transpose(x, (2, 0, 1)))), (0, 1, 2))
    x = g.maxpool(x, 2, 2, pad=1)
    return g.network(g.dense(g.flatten(x), n_out))


def mlp_max(seed: int, in_dim: int = 3, n_out: int = 2) -> ir.Network:
    """Dense -> ReLU -> MaxPool1d over the hidden units (reshaped to channels x length)."""
    g = Builder((in_dim,), seed)
    x = g.relu(g.dense(0, 12))
    x = g.reshape(x, (2, 6))
    x = g.maxpool(x, 3, 1, pad=1)
    x = g.dense(g.flatten(x), 6)
    x = g.reshape(x, (1, 6))
    x = g.maxpool(x, 2, 2)
    return g.network(g.dense(g.flatten(x), n_out))


def same_line_pool(seed: int, in_dim: int = 4, width: int = 24, twice: bool = True) -> ir.Network:
    """A ReLU layer h, then a max pool of windows (h_i, 3 h_i - 2 h_i): one line computed along
    two paths, equal up to rounding noise, never a winner change (`twice=False`: the pool left
    out, the same function)."""
    g = Builder((in_dim,), seed)
    h = g.relu(g.dense(0, width))
    if twice:
        noisy = g.sum(h, h, coeffs=(3.0, -2.0))
        pairs = g.reshape(g.concat([g.reshape(h, (width, 1)), g.reshape(noisy, (width, 1))], axis=1), (1, width, 2))
        pool = g._add(ir.MaxPool("MaxPool_pair", (pairs,), (1, width, 1), kernel=(1, 2), strides=(1, 2),
                                 pads=(0, 0, 0, 0), dilations=(1, 1)))
        h = g.flatten(pool)
    return g.network(g.dense(h, 2))


def tail_net(seed: int, kind: str) -> ir.Network:
    """A wide last kink node before an affine tail: conv -> ReLU (288 units) -> average pool ->
    dense; conv -> ReLU -> conv -> PReLU (150 units) -> dense; dense -> Clip[0, 1] (160 units)
    -> dense; and a wide ReLU whose max pool is the last kink node: conv -> ReLU -> 3x3 max pool
    (disjoint windows) -> dense, conv -> LeakyReLU -> 3x3 max pool (stride 2, padded, ceil
    mode: overlapping windows) -> dense."""
    if kind == "tail_avg":
        g = Builder((1, 6, 6), seed)
        x = g.avgpool(g.relu(g.conv(0, 8, 3, pad=1)), 2, 2)
    elif kind == "tail_max":
        g = Builder((1, 6, 6), seed)
        x = g.maxpool(g.relu(g.conv(0, 8, 3, pad=1)), 3, 3)
    elif kind == "tail_max_leaky":
        g = Builder((2, 6, 6), seed)
        x = g.maxpool(g.relu(g.conv(g.relu(g.conv(0, 3, 3, pad=1)), 8, 3, pad=1), 0.1), 3, 2, pad=1, ceil=True)
    elif kind == "tail_prelu":
        g = Builder((2, 5, 5), seed)
        x = g.relu(g.conv(g.relu(g.conv(0, 3, 3, pad=1)), 6, 3, pad=1), "prelu")
    else:
        g = Builder((4,), seed)
        x = g.clip(g.dense(0, 160), 0.0, 1.0)
    return g.network(g.dense(g.flatten(x) if len(g.shape(x)) > 1 else x, 2))


def make(kind: str, seed: int) -> ir.Network:
    if kind in TAIL_KINDS:
        return tail_net(seed, kind)
    if kind == "mlp":
        return mlp(seed)
    if kind == "leaky":
        return mlp(seed, slope=0.15)
    if kind == "prelu":
        return mlp(seed, widths=(8, 8, 6), slope="prelu")
    if kind == "cnn_avg":
        return cnn(seed, "avg")
    if kind == "cnn_max":
        return cnn(seed, "max")
    if kind == "resnet":
        return resnet(seed)
    if kind == "concat":
        return concat_net(seed)
    if kind == "cnn_concat":
        return cnn_concat(seed)
    if kind == "mlp_max":
        return mlp_max(seed)
    raise ValueError(kind)


def constant_images(x: torch.Tensor) -> torch.Tensor:
    """x (N, ..., H, W) with every image replaced by its mean: every max pool window then holds
    tied values (the same value computed at several cells)."""
    return x.mean(dim=(-2, -1), keepdim=True).expand_as(x).contiguous()


def segments(network: ir.Network, n: int, seed: int, scale: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    shape = (n, *network.input_shape)
    a = torch.randn(*shape, generator=gen, dtype=torch.float64) * scale
    b = torch.randn(*shape, generator=gen, dtype=torch.float64) * scale
    return a, b
