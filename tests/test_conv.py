"""The float64 CPU convolution (regionaudit/conv.py) computes torch's convolution: the same sums in
another order, on every chunking, stride, dilation and asymmetric padding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from regionaudit import conv

CASES = [  # c_in, c_out, kernel, input h x w, strides, pads (top, left, bottom, right), dilations
    (3, 8, (3, 3), (9, 11), (1, 1), (1, 1, 1, 1), (1, 1)),
    (4, 5, (4, 4), (16, 16), (2, 2), (1, 1, 1, 1), (1, 1)),
    (2, 3, (3, 2), (7, 8), (2, 1), (0, 1, 2, 0), (1, 1)),
    (2, 4, (3, 3), (10, 9), (1, 2), (2, 2, 2, 2), (2, 3)),
    (6, 2, (1, 1), (8, 8), (2, 2), (0, 0, 0, 0), (1, 1)),
]


@pytest.mark.parametrize("chunk_bytes", [1, 5000, conv.CHUNK_BYTES], ids=["one-probe", "uneven", "default"])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("with_bias", [False, True])
def test_unfolded_conv_equals_torch(case, chunk_bytes, with_bias, monkeypatch):
    monkeypatch.setattr(conv, "CHUNK_BYTES", chunk_bytes)
    c_in, c_out, k, hw, strides, pads, dil = case
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(7, c_in, *hw, generator=gen, dtype=torch.float64)
    w = torch.randn(c_out, c_in, *k, generator=gen, dtype=torch.float64)
    b = torch.randn(c_out, generator=gen, dtype=torch.float64) if with_bias else None
    top, left, bottom, right = pads
    want = F.conv2d(F.pad(x, (left, right, top, bottom)), w, b, strides, 0, dil)
    got = conv.conv(x, w, b, strides, pads, dil, 1)
    assert got.shape == want.shape
    assert float((got - want).abs().max()) <= 1e-13 * float(want.abs().max())


def test_float32_and_grouped_use_torch():
    x = torch.randn(3, 4, 6, 6)
    w = torch.randn(4, 2, 3, 3)
    got = conv.conv(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 2)
    assert torch.equal(got, F.conv2d(x, w, None, 1, 1, 1, 2))


@pytest.mark.parametrize("kernel,strides,dil", [((2, 2), (2, 2), (1, 1)), ((3, 3), (2, 2), (1, 1)), ((2, 3), (1, 2), (2, 1))])
def test_max_pool_winners_are_the_first_argmax(kernel, strides, dil):
    """MaxPool's offset-by-offset maximum and winners equal the candidates' max and first argmax,
    with ties (ReLU zeros, equal values) everywhere."""
    from regionaudit.ir import MaxPool

    gen = torch.Generator().manual_seed(1)
    x = torch.randint(-2, 3, (40, 3, 9, 9), generator=gen).to(torch.float64).clamp(min=0)
    h, w = ((9 - dil[i] * (kernel[i] - 1) - 1) // strides[i] + 1 for i in range(2))
    node = MaxPool("pool", (0,), (3, h, w), kernel=kernel, strides=strides, pads=(0, 0, 0, 0), dilations=dil)
    am = node.candidates(x).argmax(-1)
    assert torch.equal(node._max(x, True)[1].reshape(40, -1).long(), am)
    win = node.winners(x)  # torch's pooling indices: they change exactly where the argmax does
    assert torch.equal(win[:-1] != win[1:], am[:-1] != am[1:])
    assert torch.equal(node.forward([x]), node.candidates(x).max(-1).values.reshape(40, 3, h, w))
