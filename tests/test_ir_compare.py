"""The crossing scans' sign tests by numpy's kernels give torch's booleans exactly, edge values
included: a differing bit would move or drop a knot."""

from __future__ import annotations

import math

import pytest
import torch

from regionaudit.ir import Clip
from regionaudit.ir.compare import less_into, sign_bits

EDGES = [0.0, -0.0, 1e-310, -1e-310, 5e-324, -5e-324, math.inf, -math.inf, 1.0, -1.0, 2.0**-1074, -(2.0**1023)]


def _values(dtype: torch.dtype) -> torch.Tensor:
    gen = torch.Generator().manual_seed(3)
    noise = torch.randn(40, 37, generator=gen, dtype=torch.float64)
    edges = torch.tensor(EDGES, dtype=torch.float64)
    noise.view(-1)[: len(EDGES)] = edges
    noise[5] = 0.0
    noise[6] = -0.0
    noise.view(-1)[-3:] = torch.tensor([math.nan, -math.nan, math.nan])
    return noise.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("view", ["whole", "columns", "transposed"])
def test_sign_bits_are_torchs_signbit(dtype, view):
    x = _values(dtype)
    x = {"whole": x, "columns": x[:, 3::2], "transposed": x.t()}[view]
    got = sign_bits(x)
    assert got.dtype == torch.bool and got.shape == x.shape
    assert torch.equal(got, torch.signbit(x))
    assert bool(got[5 if view != "transposed" else slice(None)].any()) is (view == "transposed")


def test_sign_bits_of_other_dtypes_are_torchs():
    x = torch.tensor([-1.0, -0.0, 0.0, 2.0], dtype=torch.bfloat16)
    assert sign_bits(x).tolist() == [True, True, False, False]


@pytest.mark.parametrize("bound", ["number", "row", "zero"])
def test_less_into_a_strided_half_is_torchs_lt(bound):
    x = _values(torch.float64)
    b = {"number": 0.25, "zero": 0.0, "row": torch.linspace(-1, 1, x.shape[1], dtype=torch.float64)[None]}[bound]
    out = torch.ones(x.shape[0], 2 * x.shape[1], dtype=torch.bool)
    less_into(x, b, out[:, x.shape[1] :])
    assert torch.equal(out[:, x.shape[1] :], torch.lt(x, b))
    assert bool(out[:, : x.shape[1]].all())  # the other half untouched


def test_clip_below_reads_each_bound():
    lo = torch.tensor([[-1.0, 0.0, 0.5]], dtype=torch.float64)
    clip = Clip(name="c", inputs=[0], shape=(3,), lo=lo, hi=lo + 1.0)
    z = torch.tensor([[-2.0, 0.5, 1.0], [0.0, -0.0, 2.0]], dtype=torch.float64)
    assert clip.below(z).tolist() == [[True, False, False, True, True, True], [False, False, False, False, True, False]]
    relu6 = Clip(name="r", inputs=[0], shape=(3,), lo=torch.zeros(1, 3, dtype=torch.float64), hi=torch.full((1, 3), 6.0, dtype=torch.float64))
    assert relu6.bounds() == (0.0, 6.0)
    assert relu6.below(z * 4).tolist() == [[True, False, False, True, True, True], [False, False, False, True, True, False]]
