"""Elementwise kink nodes: units whose breakpoints are where an `offsets` value changes sign."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F

from regionaudit.ir.compare import less_into, sign_bits
from regionaudit.ir.node import Node

# `Clip.below` compares this many bytes of rows with both bounds at a time, so that the second
# comparison reads them from the cache (measured on 37-98 K units a row: 1.3-1.4x faster than two
# passes over the whole input; as fast on 1 K)
BELOW_CHUNK_BYTES = 1 << 20


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
        return sign_bits(self.offsets(z))

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

    def with_pattern(self, z, on, linear=False, inplace=False):
        """`on` (P, units) for z (P, *shape), or for z (P, k, *shape) whose k parts share each row's
        pattern (a slice's three affine coefficients). With `inplace`, for a caller whose own z is
        read nowhere else, a scalar slope overwrites z: z times 1 or the slope, the same numbers
        as the selection (x 1 is exact), without a new tensor of z's size to fault in."""
        on = on.reshape(z.shape) if on.numel() == z.numel() else on.reshape(z.shape[0], 1, *z.shape[2:])
        a = self._scalar
        if inplace and a is not None:
            return z.mul_(on if a == 0 else torch.where(on, z.new_ones(()), z.new_full((), a)))
        if a == 0:  # ReLU: one pass, z or the signed zero 0 * z
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
        step = p if z.device.type != "cpu" else max(1, BELOW_CHUNK_BYTES // max(1, n * flat.element_size()))
        for r in range(0, p, step):  # (a chunk of rows in cache for its second comparison)
            less_into(flat[r : r + step], lo, out[r : r + step, :n])
            less_into(flat[r : r + step], hi, out[r : r + step, n:])
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
