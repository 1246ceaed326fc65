"""The layer IR: a ReLU network as a list of nodes in topological order.

Every tensor carries one leading *probe* axis P in front of the shape the ONNX graph sees at batch
size 1 (`Node.shape`). Evaluating many probes is then one batched call per node, and ONNX shape
arithmetic (Reshape targets, Concat axes, Transpose perms) applies unchanged after that axis.

Affine nodes evaluate `f(x)` (`forward`) and their linear part `f(x) - f(0)` (`linear`); the
linear part is what tangents go through. Kink nodes are where activation regions come from:
elementwise units (`LeakyRelu`, `Clip`: a subclass of `UnitKink`, whose breakpoints are where an
`offsets` value changes sign) and windows (`MaxPool`, and `WindowMax` for Max/Min of tensors and
ReduceMax/ReduceMin: a kink wherever a window's argmax changes).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F

from regionaudit.conv import conv, conv_transpose, pad_spatial, rows_read
from regionaudit.errors import BadOption


def _flat_spatial(x: torch.Tensor, n_spatial: int) -> tuple[torch.Tensor, tuple[int, ...]]:
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
        fused = b is None or (isinstance(b, torch.Tensor) and b.numel() == self.weight.shape[1] and b.dim() <= xs[0].dim())
        if fused and self._transposed(xs[0]):
            return self._transposed_product(xs[0], self.bias)
        y = self.linear(xs)
        return y if self.bias is None else y + self.bias

    def _transposed(self, x: torch.Tensor) -> bool:
        """Whether x @ W is better computed as (W^T x^T)^T: for many probes into a narrow output
        in float64 on CPU, MKL runs that orientation 1.3-1.8x faster (measured with outputs of 10
        to 128; at 1024 wide it is slower)."""
        w = self.weight
        return (
            not self.weight_left and x.dim() >= 2 and w.dim() == 2 and x.dtype == torch.float64
            and x.device.type == "cpu" and w.shape[1] <= 256 and x.numel() >= 2 * w.shape[1] * w.shape[0]
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

    def _conv(self, x, bias):
        x, lead = _flat_spatial(x, self.weight.dim() - 2)
        y = conv(x, self.weight, bias, self.strides, self.pads, self.dilations, self.groups, self._derived)
        return y.reshape(*lead, *y.shape[1:])

    def macs(self, in_shapes):
        return math.prod(self.shape) * math.prod(self.weight.shape[1:])

    def describe(self):
        k = "x".join(map(str, self.weight.shape[2:]))
        s = f"{self.weight.shape[0]} filters {k}"
        if self.groups > 1:
            s += f", groups {self.groups}"
        if any(v != 1 for v in self.strides):
            s += f", stride {','.join(map(str, self.strides))}"
        return s


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
        x, lead = _flat_spatial(xs[0], n)
        out_spatial = self.divisor.shape
        x = _pad_windows(x, self.pads, self.kernel, self.strides, (1,) * n, out_spatial, 0.0)
        if tuple(x.shape[2:]) == tuple(self.kernel) and all(o == 1 for o in out_spatial):
            # one window over the whole image (a CIFAR ResNet's last pool): one reduction over
            # contiguous cells, about 10x faster than the taps' strided passes at 8x8
            y = x.reshape(*x.shape[:2], -1).sum(-1).reshape(*x.shape[:2], *out_spatial) / self.divisor
            return y.reshape(*lead, *y.shape[1:])
        # window sums one axis at a time over strided views (torch's float64 pooling and
        # depthwise convolution are several times slower)
        for i in reversed(range(n)):
            taps = [_tap(x, 2 + i, o, self.strides[i], out_spatial[i]) for o in range(self.kernel[i])]
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
class UnitKink(Node):
    """An elementwise kink: one unit per element, affine between `breaks` breakpoints.

    `offsets(z)` holds, for each breakpoint and unit, the value whose sign change is a kink
    (breakpoint-major: all units for the first breakpoint, then the second); an analysis reads
    the unit of offset column c as `c % units`. A pattern `on` says, per offset, which side of
    its breakpoint the unit is on; `with_pattern` evaluates the unit's affine piece there.
    """

    is_kink: ClassVar[bool] = True
    breaks: ClassVar[int] = 1

    def offsets(self, z: torch.Tensor) -> torch.Tensor:
        """(P, breaks * units) for z (P, *shape)."""
        return z.reshape(z.shape[0], -1)

    def below(self, z: torch.Tensor) -> torch.Tensor:
        """Whether each offset's sign bit is set (P, breaks * units, bool): `offsets(z) < 0`, -0.0
        included, the one-byte scan a search for sign changes reads."""
        return torch.signbit(self.offsets(z))

    def offsets_at(self, z: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """`offsets(z)[rows, cols]`, the same numbers, for a few entries."""
        return self.offsets(z)[rows, cols]

    def offset_slopes(self, dz: torch.Tensor) -> torch.Tensor:
        """The linear part of `offsets`: derivatives (P, breaks * units) for tangents dz (P, *shape)."""
        flat = dz.reshape(dz.shape[0], -1)
        return flat if self.breaks == 1 else flat.repeat(1, self.breaks)

    def with_pattern(self, z: torch.Tensor, on: torch.Tensor, linear: bool = False) -> torch.Tensor:
        """The affine piece selected by `on` (P, breaks * units) at z (its linear part if asked)."""
        raise NotImplementedError

    def slope_jumps(self) -> torch.Tensor:
        """(breaks * units,) slope above each breakpoint minus slope below it: crossing one at
        rate |dz/dt| changes the unit's dh/dt by this times |dz/dt|, in either direction."""
        raise NotImplementedError

    def forward(self, xs):
        z = xs[0]
        return self.with_pattern(z, self.offsets(z) > 0)

    def tangent(self, z: torch.Tensor, dz: torch.Tensor) -> torch.Tensor:
        """Push tangents `dz` (T, P, *shape) through with the pattern of `z` (P, *shape) fixed."""
        on = self.offsets(z) > 0
        t = dz.shape[0]
        dz = dz.expand(t, *z.shape)  # a tangent shared by all points (P = 1) meets their patterns
        flat = dz.reshape(t * z.shape[0], *z.shape[1:])
        out = self.with_pattern(flat, on.repeat(t, 1), linear=True)
        return out.reshape(dz.shape)

    @property
    def units(self):
        return math.prod(self.shape)


@dataclass(eq=False)
class LeakyRelu(UnitKink):
    """ReLU (slope 0), LeakyReLU (scalar slope), PReLU (constant slope tensor, broadcast) and Abs
    (slope -1): one breakpoint, at zero."""

    slope: torch.Tensor = None
    op_type: str = "Relu"
    kind: ClassVar[str] = "relu"
    # `scalar_slope()`, read from slope when it is set: on a GPU each read of a device number
    # waits for the device, and every forward pass and crossing scan would read it again
    _scalar: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        self._scalar = self._read_scalar()

    def convert(self, dtype, device):
        super().convert(dtype, device)
        self._scalar = self._read_scalar()  # (a slope may round to another float32)

    def _read_scalar(self) -> float | None:
        return float(self.slope) if self.slope is not None and self.slope.numel() == 1 else None

    def scalar_slope(self) -> float | None:
        """The one slope of every unit (ReLU, LeakyReLU, Abs), or None (PReLU's slope tensor)."""
        return self._scalar

    def forward(self, xs):
        z = xs[0]
        a = self._scalar
        if a is not None:  # one fused kernel, 3x faster than the where below
            return F.leaky_relu(z, a) if a else torch.relu(z)
        return torch.where(z > 0, z, self.slope * z)

    def forward_inplace(self, z: torch.Tensor) -> torch.Tensor:
        """`forward` overwriting z, for a caller whose own z is read nowhere else: no new tensor."""
        a = self._scalar
        if a is not None:
            return F.leaky_relu_(z, a) if a else torch.relu_(z)
        return self.forward([z])

    def with_pattern(self, z, on, linear=False):
        """`on` (P, units) for z (P, *shape), or for z (P, k, *shape) whose k parts share each row's
        pattern (a slice's three affine coefficients)."""
        on = on.reshape(z.shape) if on.numel() == z.numel() else on.reshape(z.shape[0], 1, *z.shape[2:])
        if self._scalar == 0:  # ReLU: one pass, z or the signed zero 0 * z
            return z * on
        return torch.where(on, z, self.slope * z)

    def slope_jumps(self):
        return torch.broadcast_to(1 - self.slope, (1, *self.shape)).reshape(-1)

    def tangent(self, z: torch.Tensor, dz: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        """Push tangents `dz` (T, P, *shape) through with the masks of `z` (P, *shape) fixed: one
        product with each point's slopes (1 where z > 0). With `inplace`, for a caller whose own
        dz is read nowhere else, dz is overwritten: about 3x faster than writing a new tensor of
        its size, which the memory-bound product is."""
        slopes = torch.where(z > 0, torch.ones((), dtype=dz.dtype, device=dz.device), self.slope.to(dz.dtype))
        return dz.mul_(slopes) if inplace else dz * slopes

    def describe(self):
        if self.op_type in ("Relu", "Max"):
            return ""
        if self.op_type == "Abs":
            return "absolute value"
        if self._scalar is not None:
            return f"slope {self._scalar:g}"
        return "per-channel slopes"


@dataclass(eq=False)
class Clip(UnitKink):
    """`min(max(z, lo), hi)` per element (Clip, ReLU6, Hardtanh, HardSigmoid after its affine
    part, Max/Min with a constant): two breakpoints per unit, at `lo` and at `hi`.

    `lo` and `hi` are full-shape constants with `lo <= hi`; a missing bound is -inf / +inf, whose
    offset never changes sign.
    """

    lo: torch.Tensor = None
    hi: torch.Tensor = None
    op_type: str = "Clip"
    kind: ClassVar[str] = "clip"
    breaks: ClassVar[int] = 2
    # `bounds()`, read from lo and hi when they are set (a pass over both, which every crossing
    # scan would otherwise repeat)
    _bounds: tuple[float, float] | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        self._bounds = self._uniform_bounds()

    def convert(self, dtype, device):
        super().convert(dtype, device)
        self._bounds = self._uniform_bounds()  # (a bound may round to another float32)

    def bounds(self) -> tuple[float, float] | None:
        """(lo, hi) where each is one number for every unit (ReLU6, Hardtanh): then the forward
        pass is one clamp, and the offsets subtract numbers, reading no full-shape constant."""
        return self._bounds

    def _uniform_bounds(self) -> tuple[float, float] | None:
        lo, hi = self.lo.reshape(-1), self.hi.reshape(-1)
        if lo.numel() and bool((lo == lo[0]).all()) and bool((hi == hi[0]).all()):
            return float(lo[0]), float(hi[0])
        return None

    def forward(self, xs):
        bounds = self.bounds()
        if bounds is not None:
            return torch.clamp(xs[0], *bounds)
        return torch.minimum(torch.maximum(xs[0], self.lo), self.hi)

    def forward_inplace(self, z: torch.Tensor) -> torch.Tensor:
        """`forward` overwriting z, for a caller whose own z is read nowhere else: no new tensor."""
        bounds = self.bounds()
        if bounds is not None:
            return z.clamp_(*bounds)
        return self.forward([z])

    def _flat_bounds(self) -> tuple:
        """lo and hi as operands for z flattened to (P, units): two numbers where `bounds()` has
        them, else rows (1, units)."""
        return self.bounds() or (self.lo.reshape(1, -1), self.hi.reshape(1, -1))

    def offsets(self, z):
        p = z.shape[0]
        flat = z.reshape(p, -1)
        n = flat.shape[1]
        lo, hi = self._flat_bounds()
        out = z.new_empty(p, 2 * n)  # written in place: no copy of the two halves into one
        torch.sub(flat, lo, out=out[:, :n])
        torch.sub(flat, hi, out=out[:, n:])
        return out

    def below(self, z):
        """z < lo and z < hi, compared: the sign of z - bound exactly (a float difference is 0
        only where the two are equal), without writing the offsets, twice z's size (a scan 2x
        faster). Only -0.0 at a bound of 0 differs from the offsets' sign bit: a zero, which
        no crossing test passes."""
        p = z.shape[0]
        flat = z.reshape(p, -1)
        n = flat.shape[1]
        lo, hi = self._flat_bounds()
        out = torch.empty(p, 2 * n, dtype=torch.bool, device=z.device)
        torch.lt(flat, lo, out=out[:, :n])
        torch.lt(flat, hi, out=out[:, n:])
        return out

    def offsets_at(self, z, rows, cols):
        n = self.units
        unit = cols % n
        bound = torch.where(cols < n, self.lo.reshape(-1)[unit], self.hi.reshape(-1)[unit])
        return z.reshape(z.shape[0], -1)[rows, unit] - bound

    def with_pattern(self, z, on, linear=False):
        n = on.shape[1] // 2
        above_lo, above_hi = on[:, :n].reshape(z.shape), on[:, n:].reshape(z.shape)
        if linear:
            return torch.where(above_lo & ~above_hi, z, torch.zeros((), dtype=z.dtype, device=z.device))
        lo, hi = self.lo.expand(z.shape), self.hi.expand(z.shape)
        return torch.where(above_hi, hi, torch.where(above_lo, z, lo))

    def slope_jumps(self):
        ones = torch.ones(self.units, dtype=self.lo.dtype, device=self.lo.device)
        return torch.cat([ones, -ones])  # 0 -> 1 at lo, 1 -> 0 at hi

    def tangent(self, z: torch.Tensor, dz: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        """`UnitKink.tangent` as one product with each point's slopes (1 where lo < z <= hi, the
        pattern's linear piece: z - lo > 0 and not z - hi > 0, exactly), broadcast over the
        tangents, instead of the pattern repeated for each of them: 3x faster. With `inplace`,
        dz (read nowhere else) is overwritten."""
        bounds = self.bounds()
        lo, hi = bounds or (self.lo, self.hi)
        inside = (z > lo) & (z <= hi)
        slopes = inside.to(dz.dtype)
        return dz.mul_(slopes) if inplace else dz * slopes

    def describe(self):
        bounds = self.bounds()
        return "per-element bounds" if bounds is None else f"[{bounds[0]:g}, {bounds[1]:g}]"


def _pad_windows(x, pads, kernel, strides, dilations, out_spatial, value: float) -> torch.Tensor:
    """x (N, C, *spatial) with its ONNX pads, and cells at the end where ceil_mode windows run past
    them, all `value`: every window of the `out_spatial` grid lies inside (a copy only where there
    is padding)."""
    n = len(kernel)
    x = pad_spatial(x, pads, value=value)
    extra = []
    for i in range(n):
        need = (out_spatial[i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1
        extra.append(max(0, need - x.shape[2 + i]))
    if any(extra):
        x = pad_spatial(x, tuple([0] * n + extra), value=value)
    return x


def _tap(t: torch.Tensor, dim: int, start: int, stride: int, count: int) -> torch.Tensor:
    """The view t[..., start : start + stride * count : stride, ...] along `dim`: one kernel tap of
    every window along that axis."""
    return t.narrow(dim, start, (count - 1) * stride + 1)[(slice(None),) * dim + (slice(None, None, stride),)]


def _tap_spans(length, k, stride, dilation, out_len, pad) -> list[tuple[int, int]]:
    """For each tap o of a window axis, the outputs (first, last + 1) whose tap o is a cell of the
    input (not padding): output i reads cell i * stride + o * dilation - pad."""
    spans = []
    for o in range(k):
        first = max(0, -(-(pad - o * dilation) // stride))
        last = min(out_len, (length - 1 + pad - o * dilation) // stride + 1)
        spans.append((first, max(first, last)))
    return spans


def _window_step(y, code, dim, k, stride, dilation, out_len, inner, winners, total, pad=0):
    """One axis of a window maximum: y (..., length, ...) -> (..., out_len, ...) along `dim`, the
    max over the k taps of each window, `pad` cells of padding before y. With `winners`, `code`
    (the previous axes' first-maximum index, None before the first axis) becomes the index over
    this axis and the previous ones: tap * inner + code at the tap that wins (strictly greater:
    the first maximum stays)."""
    spans = _tap_spans(y.shape[dim], k, stride, dilation, out_len, pad)
    if any(span != (0, out_len) for span in spans):
        return _window_step_padded(y, code, dim, k, stride, dilation, out_len, inner, winners, total, pad, spans)

    def tap(t: torch.Tensor, o: int) -> torch.Tensor:
        return _tap(t, dim, o * dilation, stride, out_len)

    best = tap(y, 0)
    dtype = torch.uint8 if total <= 255 else torch.int32
    new = None if code is None else tap(code, 0)  # a view of `code`: replaced below, never written
    for o in range(1, k):
        cand = tap(y, o)
        if winners:
            gt = torch.gt(cand, best)  # strictly greater: the first maximum stays
            if code is not None:
                # new + gt * (tap's code - new): torch.where on these small integer codes runs
                # 2-3x slower than the three passes (uint8 wraps, but the sum is exact)
                take = tap(code, o) - new
                take.add_(o * inner).mul_(gt.view(torch.uint8) if dtype == torch.uint8 else gt.to(dtype))
                new = take.add_(new)
            elif new is None:  # the first tap against the second: the code is the comparison
                new = gt.view(torch.uint8) if dtype == torch.uint8 else gt.to(dtype)
            else:
                new.masked_fill_(gt, o)
        best = torch.maximum(best, cand)
    if winners and new is None:
        new = torch.zeros(best.shape, dtype=dtype, device=y.device)
    if k == 1:
        best = best.contiguous()
    return best, new


def _window_step_padded(y, code, dim, k, stride, dilation, out_len, inner, winners, total, pad, spans):
    """`_window_step` where some taps read padding at some outputs, without a padded copy of y:
    it starts from a tap `c` that every output reads inside y, and each other tap updates only the
    outputs whose cell it reads (padding is -inf: never a maximum). Ties go to the first tap as
    in `_window_step`: the taps before c run from c - 1 down with >=, those after it up with >."""
    c = next(o for o, span in enumerate(spans) if span == (0, out_len))  # `_max` checks there is one

    def tap(t: torch.Tensor, o: int, lo: int = 0, hi: int = out_len) -> torch.Tensor:
        return _tap(t, dim, lo * stride + o * dilation - pad, stride, hi - lo)

    dtype = torch.uint8 if total <= 255 else torch.int32
    best = tap(y, c).clone(memory_format=torch.contiguous_format)  # updated in place below
    new = None
    if winners:
        new = torch.full(best.shape, c * inner, dtype=dtype, device=y.device)
        if code is not None:
            new += tap(code, c)
    for o in [*range(c - 1, -1, -1), *range(c + 1, k)]:
        lo, hi = spans[o]
        if lo >= hi:
            continue
        cand, seg = tap(y, o, lo, hi), best.narrow(dim, lo, hi - lo)
        if winners:
            win = torch.ge(cand, seg) if o < c else torch.gt(cand, seg)
            mine = new.narrow(dim, lo, hi - lo)
            # mine + win * (tap's code - mine), as in `_window_step` (uint8 wraps, the sum is exact)
            take = torch.rsub(mine, o * inner) if code is None else tap(code, o, lo, hi) - mine
            if code is not None:
                take.add_(o * inner)
            mine.add_(take.mul_(win.view(torch.uint8) if dtype == torch.uint8 else win.to(dtype)))
        torch.maximum(seg, cand, out=seg)
    return best, new


@dataclass(eq=False)
class MaxPool(Node):
    """Max pooling over windows; a kink wherever a window's argmax changes."""

    kernel: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    pads: tuple[int, ...] = ()
    dilations: tuple[int, ...] = ()
    ceil_mode: bool = False
    kind: ClassVar[str] = "maxpool"
    is_kink: ClassVar[bool] = True

    def _padded(self, x: torch.Tensor, value: float = -math.inf) -> torch.Tensor:
        """The input (P', C, *spatial) with its padding, and padding cells where ceil_mode windows
        run past it, all `value` (-inf: never a maximum); a copy only where there is padding."""
        n = len(self.kernel)
        xf, _ = _flat_spatial(x, n)
        return _pad_windows(xf, self.pads, self.kernel, self.strides, self.dilations, self.shape[-n:], value)

    def _windows(self, x: torch.Tensor, value: float = -math.inf, rows: tuple[int, int] | None = None) -> torch.Tensor:
        """Every window as a view (P, ..., *kernel) of the input, padded with `value` (a copy only
        where there is padding); windows in output order. With `rows` (a, b), those of output
        rows a..b-1 only (a 2-D pool): only the input rows they read are padded."""
        n = len(self.kernel)
        if rows is not None and rows[1] <= rows[0]:  # no window: nothing to pad or read
            channels = x.shape[x.dim() - n - 1]
            return x.new_empty(x.shape[0], channels, 0, *self.shape[len(self.shape) - n + 1 :], *self.kernel)
        if rows is None:
            xf = self._padded(x, value)
        else:
            xf, _ = _flat_spatial(x, n)
            r0, r1 = rows_read(rows, self.kernel[0], self.strides[0], self.pads[0], self.dilations[0])
            s0, s1 = min(max(r0, 0), xf.shape[2]), max(min(r1, xf.shape[2]), 0)
            s1 = max(s0, s1)
            pads = (s0 - r0, *self.pads[1:n], r1 - s1, *self.pads[n + 1 :])
            xf = _pad_windows(xf[:, :, s0:s1], pads, self.kernel, self.strides, self.dilations, (rows[1] - rows[0], *self.shape[-n + 1 :]), value)
        for i in range(n):  # unfold each spatial axis: (..., out_i, ..., k_i) at the end
            span = (self.kernel[i] - 1) * self.dilations[i] + 1
            xf = xf.unfold(2 + i, span, self.strides[i])[..., :: self.dilations[i]]
        return xf.reshape(x.shape[0], *xf.shape[1:])  # (P, C, out_1..out_n, k_1..k_n): still a view

    def candidates(self, x: torch.Tensor, value: float = -math.inf, rows: tuple[int, int] | None = None) -> torch.Tensor:
        """Every window's candidates: (P, windows, k), padding as `value`; windows in output order.
        With `rows` (a, b), only the windows of output rows a..b-1 (a 2-D pool)."""
        view = self._windows(x, value, rows)
        return view.reshape(x.shape[0], -1, math.prod(self.kernel))

    def candidates_by_window(self, x: torch.Tensor, value: float = -math.inf, rows: tuple[int, int] | None = None) -> torch.Tensor:
        """`candidates` with the probe axis last: (windows, k, P), one copy (for products that
        run over the probes, as the distance's Gram matrices do); `rows` as in `candidates`."""
        view = self._windows(x, value, rows)
        return view.movedim(0, -1).reshape(-1, math.prod(self.kernel), x.shape[0])

    @property
    def copy_windows(self) -> bool:
        """Whether one copy of every window beats reading them tap by tap: windows that share no
        cell (the copy is then no larger than the input) of more than 4 cells (measured: 1.5x
        faster for 4x4 windows, 1.25-3x slower for 2x2)."""
        disjoint = all(s >= (k - 1) * d + 1 for k, s, d in zip(self.kernel, self.strides, self.dilations))
        return disjoint and math.prod(self.kernel) > 4

    def taps(self, x: torch.Tensor, value: float = -math.inf) -> list[torch.Tensor]:
        """The k candidates of every window as k views (P, *shape) of the input, in `candidates`
        order; padding is `value` (0 for tangents: a padding cell is a constant)."""
        view = self._windows(x, value)
        offsets = itertools.product(*(range(k) for k in self.kernel))
        return [view[(..., *o)].reshape(x.shape[0], *self.shape) for o in offsets]

    def cells(self, x: torch.Tensor) -> torch.Tensor:
        """(W, k) float64: the flat input cell of each candidate of each window, -inf at padding:
        `candidates` of one probe whose values are the cell numbers (exact in float64)."""
        shape = x.shape[1:]
        numbers = torch.arange(math.prod(shape), dtype=torch.float64, device=x.device).reshape(1, *shape)
        return self.candidates(numbers)[0]

    def candidates_at(self, x: torch.Tensor, rows: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
        """The candidates (R, k) of window windows[r] at probe rows[r], read cell by cell: no copy
        of every window of those probes; padding stays -inf."""
        cells = self.cells(x).index_select(0, windows)  # (R, k)
        pad = torch.isinf(cells)
        values = x.reshape(x.shape[0], -1)[rows[:, None], cells.masked_fill(pad, 0).long()]
        return values.masked_fill(pad, -math.inf)

    def winner_cells(self, x: torch.Tensor, code: torch.Tensor | None = None) -> torch.Tensor:
        """(P, W): the flat input cell of each window's first maximum (never padding: a window
        holds at least one input cell); `code` is `winners(x)` where the caller has it."""
        code = (self.winners(x) if code is None else code).long()  # (P, W)
        return self.cells(x).gather(1, code.t()).t().long()

    def _max(self, x: torch.Tensor, winners: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Each window's maximum (P, windows), and with `winners` the index of its first maximum
        among the candidates (`candidates(x).argmax(-1)`).

        The window is reduced one spatial axis at a time, last axis first: a maximum over a box is
        the maximum of its rows' maxima, and the first maximum in row-major order lies in the first
        row holding the maximum, at that row's first maximum. Each step reads its input once
        through strided views: 4-7x faster than torch's float64 pooling, with or without indices.
        """
        n = len(self.kernel)
        if winners and self.copy_windows:  # one reduction with indices (the first maximum)
            best, first = self.candidates(x).max(-1)
            return best, first.to(torch.uint8 if math.prod(self.kernel) <= 255 else torch.int32)
        y, _ = _flat_spatial(x, n)
        pads = self.pads[:n]
        if y.requires_grad or not self._pads_unwritten(y.shape[2:]):  # (it writes in place)
            y, pads = self._padded(x), (0,) * n
        code, inner = None, 1
        for axis in reversed(range(n)):
            y, code = _window_step(
                y, code, y.dim() - n + axis, self.kernel[axis], self.strides[axis], self.dilations[axis],
                self.shape[-n + axis], inner, winners, math.prod(self.kernel), pads[axis],
            )
            inner *= self.kernel[axis]
        best = y.reshape(x.shape[0], -1)
        return best, (code.reshape(x.shape[0], -1) if winners else None)

    def _pads_unwritten(self, spatial) -> bool:
        """Whether the axes are reduced without a padded copy of the input (`_window_step_padded`):
        where there are pads, and along every axis some tap reads a cell of the input at every
        output. Measured on 8-16 channels, 31-32 pixels: 1.2-1.4x faster for 3x3 windows with one
        cell of padding, as fast for 2x2; slower where only ceil_mode's last windows run past the
        input (the copy is then the cheaper)."""
        if not any(self.pads):
            return False
        n = len(self.kernel)
        return all(
            (0, self.shape[-n + a]) in _tap_spans(spatial[a], self.kernel[a], self.strides[a], self.dilations[a], self.shape[-n + a], self.pads[a])
            for a in range(n)
        )

    def winners(self, x: torch.Tensor) -> torch.Tensor:
        """(P, windows): the index of each window's first maximum among its candidates; equal
        between two probes exactly when the same candidate wins."""
        return self._max(x, True)[1]

    def forward_and_winners(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`forward` and `winners` of x from one pass over it."""
        best, code = self._max(x, True)
        return best.reshape(x.shape[0], *self.shape), code

    def forward(self, xs):
        return self._max(xs[0], False)[0].reshape(xs[0].shape[0], *self.shape)

    def tangent(self, z: torch.Tensor, dz: torch.Tensor, cells: torch.Tensor | None = None,
                rows: tuple[int, int] | None = None) -> torch.Tensor:
        """Push tangents `dz` (T, P or 1, *input shape) through the window winners of `z` (first
        maximum on ties): each window passes its winner's cell; `cells` is `winner_cells(z)` where
        the caller has it. (T, P, *shape); with `rows` (a, b), output rows a..b-1 only (a 2-D
        pool)."""
        cells = self.winner_cells(z) if cells is None else cells
        t, p = dz.shape[0], z.shape[0]
        shape = self.shape
        if rows is not None:
            a, b = rows
            cells = cells.reshape(p, -1, *shape[-2:])[:, :, a:b].reshape(p, -1)
            shape = (*shape[:-2], b - a, shape[-1])
        if dz.shape[1] == 1:  # one tangent for all points: index it, no copy per point first
            picked = dz.reshape(t, -1)[:, cells]
        else:
            picked = dz.reshape(t, p, -1).gather(-1, cells.unsqueeze(0).expand(t, -1, -1))
        return picked.reshape(t, p, *shape)

    @property
    def windows(self) -> int:
        return math.prod(self.shape)

    def macs(self, in_shapes):
        return math.prod(self.shape) * math.prod(self.kernel)

    def describe(self):
        return "kernel " + "x".join(map(str, self.kernel))


@dataclass(eq=False)
class WindowMax(MaxPool):
    """Max over the last axis: (*out, k) -> out. Elementwise Max of k tensors (after `Stack`) and
    ReduceMax (after moving the reduced axes last); Min is this between two negations. Analysed
    exactly as MaxPool windows, and counted with them."""

    kind: ClassVar[str] = "max"

    def _windows(self, x, value=-math.inf, rows=None):
        return x.reshape(x.shape[0], -1, self.kernel[0])  # (no rows: not a 2-D pool)

    def _max(self, x, winners):
        k = self.kernel[0]
        best, code = _window_step(self._windows(x), None, 2, k, 1, 1, 1, 1, winners, k)
        return best.reshape(x.shape[0], -1), (code.reshape(x.shape[0], -1) if winners else None)

    def describe(self):
        return f"max of {self.kernel[0]}"


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

    def _apply(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        n = self.weight.dim() - 2
        xf, lead = _flat_spatial(x, n)
        y = conv_transpose(xf, self.weight, bias, self.strides, self.pads, self.output_padding, self.dilations, self.groups)
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
        if any(v != 1 for v in self.strides):
            s += f", stride {','.join(map(str, self.strides))}"
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
        """Probes (P, *input_shape) or flat rows (P, prod) as the graph input (P, *graph shape)."""
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
