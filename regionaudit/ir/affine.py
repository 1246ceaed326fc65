"""Affine nodes: `forward` is f(x), `linear` its linear part f(x) - f(0), which tangents go through."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from regionaudit.conv import conv, conv_transpose, pad_spatial
from regionaudit.ir.node import Node, flat_spatial
from regionaudit.ir.taps import pad_windows, tap_view


@dataclass(eq=False)
class MatMul(Node):
    """`x @ W + b` (W on the right) or `W @ x + b` (W on the left), with numpy broadcasting."""

    weight: torch.Tensor = None
    bias: torch.Tensor | None = None
    weight_left: bool = False
    kind: ClassVar[str] = "matmul"

    def linear(self, xs):
        if self._transposed(xs[0]):
            return self._transposed_product(xs[0], None)
        return self.weight @ xs[0] if self.weight_left else xs[0] @ self.weight

    def forward(self, xs):
        b = self.bias
        # only a row bias (one value per output column) can be added inside the product; a
        # column of as many values (Gemm's C of shape (M, 1)) broadcasts along the other axis
        fused = b is None or (isinstance(b, torch.Tensor) and b.numel() == self.weight.shape[1]
                              and tuple(b.shape[-1:]) == (b.numel(),) and b.dim() <= xs[0].dim())
        if fused and self._transposed(xs[0]):
            return self._transposed_product(xs[0], self.bias)
        y = self.linear(xs)
        return y if self.bias is None else y + self.bias

    def _transposed(self, x: torch.Tensor) -> bool:
        """Whether x @ W is better computed as (W^T x^T)^T: for many probes into a narrow output
        in float64 on CPU, MKL's AVX2 kernels run that orientation 1.3-1.8x faster (measured with
        outputs of 10 to 128; at 1024 wide it is slower). Its AVX-512 kernels run it 5-30 %
        slower than x @ W (outputs of 10 to 256, 100 to 1024 inputs), so it is not used where
        torch reports the CPU capability AVX512 (the proxy for MKL's kernels: ATEN_CPU_CAPABILITY
        can lower what torch reports, not what MKL runs)."""
        w = self.weight
        return (
            not self.weight_left and x.dim() >= 2 and w.dim() == 2 and x.dtype == torch.float64
            and x.device.type == "cpu" and w.shape[1] <= 256 and x.numel() >= 2 * w.shape[1] * w.shape[0]
            and torch.backends.cpu.get_cpu_capability() != "AVX512"
        )

    def _transposed_product(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1])  # every leading axis is a batch axis of the product
        out = x.new_empty(rows.shape[0], self.weight.shape[1])
        wt = self.weight.t()
        out.t().copy_(torch.mm(wt, rows.t()) if bias is None else torch.addmm(bias.reshape(-1, 1), wt, rows.t()))
        return out.reshape(*x.shape[:-1], out.shape[1])

    def macs(self, in_shapes):
        w = self.weight.shape
        k = w[-1] if self.weight_left or len(w) == 1 else w[-2]  # a 1-D weight is a dot product
        return math.prod(self.shape) * k

    def describe(self):
        return "x".join(map(str, self.weight.shape)) + (" (left)" if self.weight_left else "")


def _window_settings(strides, pads, dilations, groups: int) -> str:
    """A convolution's settings that differ from the plain ones, as `inspect` lists them."""
    s = f", groups {groups}" if groups > 1 else ""
    for name, values, plain in (("stride", strides, 1), ("pads", pads, 0), ("dilation", dilations, 1)):
        if any(v != plain for v in values):
            s += f", {name} {','.join(map(str, values))}"
    return s


@dataclass(eq=False)
class Conv(Node):
    """N-d convolution; ONNX pads (begin..., end...) applied explicitly so asymmetric pads work."""

    weight: torch.Tensor = None
    bias: torch.Tensor | None = None
    strides: tuple[int, ...] = ()
    pads: tuple[int, ...] = ()
    dilations: tuple[int, ...] = ()
    groups: int = 1
    kind: ClassVar[str] = "conv"
    # what `conv` derives from the weight alone (a depthwise convolution's matrices), kept with
    # the weight it came from (a converted or replaced weight is a new tensor: built again)
    _derived: dict = field(default_factory=dict, init=False, repr=False)

    def linear(self, xs):
        return self._conv(xs[0], None)

    def forward(self, xs):
        return self._conv(xs[0], self.bias)

    def linear_padded(self, x, pads):
        """The linear part of x (P, C, *spatial) with `pads` in place of the node's own: a band of
        an image's rows, whose neighbours outside it are zero (analysis/bands.py)."""
        return self._conv(x, None, pads)

    def sublattice(self) -> tuple[slice, ...] | None:
        """The input cells its windows read, where they are every stride-th cell of each spatial
        axis and not all of them (a 1x1 kernel without padding at a stride above 1: a ResNet's
        downsampling shortcut): a slice per spatial axis. None otherwise."""
        if any(k != 1 for k in self.weight.shape[2:]) or any(self.pads) or all(s == 1 for s in self.strides):
            return None
        return tuple(slice(None, None, s) for s in self.strides)

    def forward_on_sublattice(self, cells: torch.Tensor) -> torch.Tensor:
        """`forward` of an input whose `sublattice` cells are `cells` (P, C, *those cells): the
        same sums, at stride 1."""
        return self._conv(cells, self.bias, strides=(1,) * len(self.strides))

    def _conv(self, x, bias, pads=None, strides=None):
        x, lead = flat_spatial(x, self.weight.dim() - 2)
        pads = self.pads if pads is None else pads
        strides = self.strides if strides is None else strides
        y = conv(x, self.weight, bias, strides, pads, self.dilations, self.groups, self._derived)
        return y.reshape(*lead, *y.shape[1:])

    def macs(self, in_shapes):
        return math.prod(self.shape) * math.prod(self.weight.shape[1:])

    def describe(self):
        k = "x".join(map(str, self.weight.shape[2:]))
        return f"{self.weight.shape[0]} filters {k}" + _window_settings(self.strides, self.pads, self.dilations, self.groups)


@dataclass(eq=False)
class AvgPool(Node):
    """Average pooling as (window sum) / (divisor map): exact for every ONNX pad/ceil variant."""

    kernel: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    pads: tuple[int, ...] = ()
    divisor: torch.Tensor = None  # output spatial shape; counts per window, fixed at import
    kind: ClassVar[str] = "avgpool"

    def forward(self, xs):
        n = len(self.kernel)
        x, lead = flat_spatial(xs[0], n)
        out_spatial = self.divisor.shape
        x = pad_windows(x, self.pads, self.kernel, self.strides, (1,) * n, out_spatial, 0.0)
        if tuple(x.shape[2:]) == tuple(self.kernel) and all(o == 1 for o in out_spatial):
            # one window over the whole image (a CIFAR ResNet's last pool): one reduction over
            # contiguous cells, about 10x faster than the taps' strided passes at 8x8
            y = x.reshape(*x.shape[:2], -1).sum(-1).reshape(*x.shape[:2], *out_spatial) / self.divisor
            return y.reshape(*lead, *y.shape[1:])
        # window sums one axis at a time over strided views (torch's float64 pooling and
        # depthwise convolution are several times slower)
        for i in reversed(range(n)):
            taps = [tap_view(x, 2 + i, o, self.strides[i], out_spatial[i]) for o in range(self.kernel[i])]
            x = taps[0].clone() if len(taps) == 1 else taps[0] + taps[1]
            for t in taps[2:]:
                x += t
        y = x / self.divisor
        return y.reshape(*lead, *y.shape[1:])

    def macs(self, in_shapes):
        return math.prod(self.shape) * math.prod(self.kernel)

    def describe(self):
        return "kernel " + "x".join(map(str, self.kernel))


@dataclass(eq=False)
class GlobalAvgPool(Node):
    n_spatial: int = 2
    kind: ClassVar[str] = "globalavgpool"

    def forward(self, xs):
        dims = tuple(range(-self.n_spatial, 0))
        return xs[0].mean(dim=dims, keepdim=True)


@dataclass(eq=False)
class Scale(Node):
    """Elementwise `x * mul + add` with constants broadcast against the tensor.

    BatchNormalization (inference form) and Add/Sub/Mul/Div/Neg by constants become this node.
    """

    mul: torch.Tensor | None = None
    add: torch.Tensor | None = None
    kind: ClassVar[str] = "scale"

    def _expand(self, x):
        extra = len(self.shape) - (x.dim() - 1)
        return x.reshape(x.shape[0], *([1] * extra), *x.shape[1:]) if extra > 0 else x

    def linear(self, xs):
        x = self._expand(xs[0])
        y = x if self.mul is None else x * self.mul
        return y.expand(x.shape[0], *self.shape)

    def forward(self, xs):
        y = self.linear(xs)
        return y if self.add is None else y + self.add


@dataclass(eq=False)
class Sum(Node):
    """`sum_i coeff_i * x_i` over data tensors (residual Add, Sub of two branches)."""

    coeffs: tuple[float, ...] = (1.0, 1.0)
    kind: ClassVar[str] = "add"

    def forward(self, xs):
        p = xs[0].shape[0]
        out = None
        for c, x in zip(self.coeffs, xs):
            extra = len(self.shape) - (x.dim() - 1)
            if extra > 0:
                x = x.reshape(p, *([1] * extra), *x.shape[1:])
            term = x if c == 1.0 else c * x
            out = term if out is None else out + term
        return out.expand(p, *self.shape)

    def forward_inplace(self, xs):
        """`forward` adding into xs[0], for a caller whose own xs[0] is read nowhere else: the
        same sums in the same order, without a new tensor (where every coefficient is 1 and
        every term has the output's shape; `forward` elsewhere)."""
        x0 = xs[0]
        plain = all(c == 1.0 for c in self.coeffs) and all(x.shape == x0.shape for x in xs)
        if not plain or tuple(x0.shape[1:]) != tuple(self.shape) or not x0.is_contiguous():
            return self.forward(xs)
        for x in xs[1:]:
            x0.add_(x)
        return x0


@dataclass(eq=False)
class Concat(Node):
    axis: int = 0  # axis of the ONNX tensor (probe axis excluded), non-negative
    kind: ClassVar[str] = "concat"

    def forward(self, xs):
        return torch.cat(xs, dim=self.axis + 1)

    def macs(self, in_shapes):
        return 0


@dataclass(eq=False)
class Reshape(Node):
    """Flatten, Reshape, Squeeze and Unsqueeze: the row-major order of elements is unchanged."""

    kind: ClassVar[str] = "reshape"

    def forward(self, xs):
        return xs[0].reshape(xs[0].shape[0], *self.shape)

    def macs(self, in_shapes):
        return 0


@dataclass(eq=False)
class Transpose(Node):
    perm: tuple[int, ...] = ()
    kind: ClassVar[str] = "transpose"

    def forward(self, xs):
        return xs[0].permute(0, *[p + 1 for p in self.perm])

    def macs(self, in_shapes):
        return 0


@dataclass(eq=False)
class Pad(Node):
    """Constant zero padding; ONNX pads (begin..., end...) over every axis of the tensor."""

    pads: tuple[int, ...] = ()
    kind: ClassVar[str] = "pad"

    def forward(self, xs):
        return pad_spatial(xs[0], self.pads)

    def macs(self, in_shapes):
        return 0



@dataclass(eq=False)
class Stack(Node):
    """Data tensors broadcast to one shape and stacked on a new last axis, then a constant
    candidate when `const` (full shape, the probe axis left out) is given: the candidates of an
    elementwise Max/Min."""

    const: torch.Tensor | None = None
    kind: ClassVar[str] = "stack"

    def _stacked(self, xs, with_const: bool):
        p = xs[0].shape[0]
        out = self.shape[:-1]
        parts = []
        for x in xs:
            extra = len(out) - (x.dim() - 1)
            if extra > 0:
                x = x.reshape(p, *([1] * extra), *x.shape[1:])
            parts.append(x.expand(p, *out))
        if self.const is not None:
            c = self.const if with_const else torch.zeros_like(self.const)
            parts.append(c.expand(p, *out))
        return torch.stack(parts, dim=-1)

    def forward(self, xs):
        return self._stacked(xs, True)

    def linear(self, xs):
        return self._stacked(xs, False)

    def macs(self, in_shapes):
        return 0


@dataclass(eq=False)
class Take(Node):
    """Each output element is one input element: `index` holds its flat input position.

    Strided Slice, Split, Gather / GatherElements with constant indices, Pad in reflect / edge
    modes, Expand, Tile, DepthToSpace / SpaceToDepth: the index is the op applied, once at
    import, to the positions 0..n-1 themselves.
    """

    index: torch.Tensor = None  # int64, shape = self.shape
    kind: ClassVar[str] = "take"

    def forward(self, xs):
        x = xs[0]
        return x.reshape(x.shape[0], -1)[:, self.index.reshape(-1)].reshape(x.shape[0], *self.shape)

    def convert(self, dtype, device):
        self.index = self.index.to(device=device)

    def macs(self, in_shapes):
        return 0

    def describe(self):
        return "element selection"


@dataclass(eq=False)
class Resample(Node):
    """A fixed linear map along each of some axes (Resize / Upsample with constant scales in any
    mode: interpolation is separable, so axis `axes[i]` is multiplied by `matrices[i]` (out, in))."""

    axes: tuple[int, ...] = ()
    matrices: list = field(default_factory=list)
    kind: ClassVar[str] = "resample"

    def forward(self, xs):
        y = xs[0]
        for axis, m in zip(self.axes, self.matrices):
            y = torch.movedim(torch.movedim(y, axis + 1, -1) @ m.T, -1, axis + 1)
        return y

    def convert(self, dtype, device):
        self.matrices = [m.to(dtype=dtype, device=device) for m in self.matrices]

    def macs(self, in_shapes):
        return math.prod(self.shape) * max((m.shape[1] for m in self.matrices), default=1)

    def describe(self):
        return "resize " + ", ".join(f"axis {a}: {m.shape[1]}->{m.shape[0]}" for a, m in zip(self.axes, self.matrices))


@dataclass(eq=False)
class ConvTranspose(Node):
    """N-d transposed convolution (`conv.conv_transpose`): the full transposed convolution, its
    pads cropped and ONNX's output_padding appended."""

    weight: torch.Tensor = None  # (C_in, C_out / groups, *kernel), as ONNX and torch store it
    bias: torch.Tensor | None = None
    strides: tuple[int, ...] = ()
    pads: tuple[int, ...] = ()
    output_padding: tuple[int, ...] = ()
    dilations: tuple[int, ...] = ()
    groups: int = 1
    kind: ClassVar[str] = "convtranspose"
    _derived: dict = field(default_factory=dict, init=False, repr=False)  # what the weight alone decides (conv.py)

    def _apply(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        n = self.weight.dim() - 2
        xf, lead = flat_spatial(x, n)
        y = conv_transpose(xf, self.weight, bias, self.strides, self.pads, self.output_padding, self.dilations, self.groups,
                           cache=self._derived)
        return y.reshape(*lead, *y.shape[1:])

    def linear(self, xs):
        return self._apply(xs[0], None)

    def forward(self, xs):
        return self._apply(xs[0], self.bias)

    def macs(self, in_shapes):
        return math.prod(in_shapes[0]) * math.prod(self.weight.shape[1:])

    def describe(self):
        k = "x".join(map(str, self.weight.shape[2:]))
        s = f"{self.weight.shape[1] * self.groups} filters {k}, transposed"
        s += _window_settings(self.strides, self.pads, self.dilations, self.groups)
        if any(self.output_padding):
            s += f", output padding {','.join(map(str, self.output_padding))}"
        return s


@dataclass(eq=False)
class Einsum(Node):
    """`torch.einsum(equation, x, weight)` (or weight first): one data operand, at most one
    constant; the equation already carries a letter for the probe axis."""

    equation: str = ""
    weight: torch.Tensor | None = None
    data_first: bool = True
    kind: ClassVar[str] = "einsum"

    def forward(self, xs):
        if self.weight is None:
            return torch.einsum(self.equation, xs[0])
        ops = (xs[0], self.weight) if self.data_first else (self.weight, xs[0])
        return torch.einsum(self.equation, *ops)

    def macs(self, in_shapes):
        """Output elements times the size of the summed-over letters of the constant's term."""
        if self.weight is None:
            return math.prod(self.shape)
        terms, out = self.equation.split("->")
        w_term = terms.split(",")[1 if self.data_first else 0]
        if "." in w_term:
            return math.prod(self.shape)
        summed = [n for c, n in zip(w_term, self.weight.shape) if c not in out]
        return math.prod(self.shape) * math.prod(summed)

    def describe(self):
        return self.equation
