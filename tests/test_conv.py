"""The float64 CPU convolution (regionaudit/conv.py) computes torch's convolution: the same sums in
another order, on every chunking, stride, dilation and asymmetric padding, grouped and depthwise
ones included; and MaxPool's window
maximum, reduced axis by axis, is the maximum and first argmax of its candidates, and the
candidates it reads cell by cell, tap by tap, or at the winner (tangents) are the candidates."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
import torch.nn.functional as F

from regionaudit import conv, ir
from regionaudit.analysis import bands
from regionaudit.ir.taps import tap_spans

CASES = [  # c_in, c_out, kernel, input h x w, strides, pads (top, left, bottom, right), dilations
    (3, 8, (3, 3), (9, 11), (1, 1), (1, 1, 1, 1), (1, 1)),
    (4, 5, (4, 4), (16, 16), (2, 2), (1, 1, 1, 1), (1, 1)),
    (2, 3, (3, 2), (7, 8), (2, 1), (0, 1, 2, 0), (1, 1)),
    (2, 4, (3, 3), (10, 9), (1, 2), (2, 2, 2, 2), (2, 3)),
    (6, 2, (1, 1), (8, 8), (2, 2), (0, 0, 0, 0), (1, 1)),
    (3, 8, (3, 3), (20, 11), (1, 1), (1, 1, 1, 1), (1, 1)),  # tall: unfolded along the width only
    (2, 4, (3, 2), (40, 9), (1, 2), (2, 0, 1, 3), (2, 3)),
    (4, 3, (1, 3), (6, 7), (1, 1), (0, 1, 0, 1), (1, 1)),
    (5, 24, (3, 3), (12, 10), (1, 1), (1, 0, 2, 1), (1, 1)),  # many outputs: kernel rows one by one
    (3, 20, (3, 3), (9, 8), (1, 1), (1, 1, 1, 1), (2, 1)),  # kernel rows one by one, dilated
    (2, 4, (3, 3), (6, 5), (1, 1), (2, 1, 2, 0), (1, 1)),  # stacked, padding wider than the kernel's reach
    (3, 6, (3, 3), (9, 7), (1, 1), (1, 0, 1, 2), (2, 1)),  # stacked, pads not a multiple of the dilation
    (8, 16, (3, 3), (4, 4), (1, 1), (1, 1, 1, 1), (1, 1)),  # stacked on a 4x4 image
    (5, 7, (1, 1), (7, 9), (1, 2), (0, 0, 0, 0), (1, 1)),  # pointwise, strided along the width
    (4, 6, (1, 1), (5, 5), (1, 1), (0, 0, 0, 0), (1, 1)),  # pointwise
    (6, 40, (1, 1), (3, 3), (1, 1), (0, 0, 0, 0), (1, 1)),  # pointwise to many outputs
    (8, 5, (1, 1), (4, 6), (1, 1), (0, 0, 0, 0), (1, 1)),  # pointwise to fewer outputs: the bias added after
    (7, 3, (1, 1), (6, 8), (2, 2), (0, 0, 0, 0), (1, 1)),  # pointwise shortcut, its cells copied
    (6, 9, (1, 1), (3, 3), (2, 2), (0, 0, 0, 0), (1, 1)),  # pointwise on 4 cells: one product over copies
]


@pytest.mark.parametrize("chunk_bytes", [1, 5000, conv.CHUNK_BYTES], ids=["one-probe", "uneven", "default"])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("with_bias", [False, True])
def test_unfolded_conv_equals_torch(case, chunk_bytes, with_bias, monkeypatch):
    monkeypatch.setattr(conv, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(conv, "UNFOLD_CHUNK_BYTES", chunk_bytes)
    c_in, c_out, k, hw, strides, pads, dil = case
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(7, c_in, *hw, generator=gen, dtype=torch.float64)
    w = torch.randn(c_out, c_in, *k, generator=gen, dtype=torch.float64)
    b = torch.randn(c_out, generator=gen, dtype=torch.float64) if with_bias else None
    top, left, bottom, right = pads
    want = F.conv2d(F.pad(x, (left, right, top, bottom)), w, b, strides, 0, dil)
    ways = [conv.conv, conv._conv2d_unfolded] + ([conv._conv2d_rows] if strides[0] == 1 else [])
    if k == (1, 1) and not any(pads):
        ways.append(lambda *a: conv._conv2d_pointwise(*a[:3], a[3]))
    for way in ways:
        got = way(x, w, b, strides, pads, dil, 1) if way is conv.conv else way(x, w, b, strides, pads, dil)
        assert got.shape == want.shape
        assert float((got - want).abs().max()) <= 1e-13 * float(want.abs().max())


@pytest.mark.parametrize("case,groups", [(c, 1) for c in CASES] + [(c, 2) for c in CASES if c[0] % 2 == c[1] % 2 == 0])
def test_convolution_of_basis_rows_is_the_convolution_exactly(case, groups):
    """An exact distance's first tangents: rows of the identity, each an image with one 1, whose
    convolution is the weight's taps placed where they land. Bitwise torch's convolution of the
    same rows (a sum of one product w x 1 and zeros), a whole identity or a run of its rows."""
    c_in, c_out, k, hw, strides, pads, dil = case
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(c_out, c_in // groups, *k, generator=gen, dtype=torch.float64)
    dim = c_in * hw[0] * hw[1]
    top, left, bottom, right = pads
    for start, count in [(0, dim), (dim // 3, min(17, dim - dim // 3))]:
        rows = torch.eye(dim, dtype=torch.float64)[start : start + count].reshape(count, c_in, *hw)
        want = F.conv2d(F.pad(rows, (left, right, top, bottom)), w, None, strides, 0, dil, groups)
        got = conv.conv2d_of_basis(w, (c_in, *hw), start, count, strides, pads, dil, groups)
        assert got.shape == want.shape and torch.equal(got, want)
    # one image row at a time, with the output rows its band reaches alone (the others are zero)
    for start in range(0, dim, hw[1]):
        rows = torch.eye(dim, dtype=torch.float64)[start : start + hw[1]].reshape(hw[1], c_in, *hw)
        want = F.conv2d(F.pad(rows, (left, right, top, bottom)), w, None, strides, 0, dil, groups)
        y = (start // hw[1]) % hw[0]
        a, b = bands.reached((y, y + 1), k[0], strides[0], top, dil[0], want.shape[2])
        got = conv.conv2d_of_basis(w, (c_in, *hw), start, hw[1], strides, pads, dil, groups, (a, b))
        assert torch.count_nonzero(want[:, :, :a]) == 0 and torch.count_nonzero(want[:, :, b:]) == 0
        assert torch.equal(got, want[:, :, a:b])


@pytest.mark.parametrize("case", [  # c_in, c_out, kernel, length, stride, pads (begin, end), dilation, groups
    (4, 16, 5, 30, 1, (2, 2), 1, 1),
    (3, 5, 3, 17, 2, (0, 1), 2, 1),
    (1, 70, 7, 12, 1, (3, 3), 1, 1),  # many outputs
    (6, 6, 3, 20, 2, (1, 1), 1, 6),  # depthwise
    (4, 6, 3, 11, 1, (1, 0), 1, 2),  # grouped
])
def test_conv1d_as_rows_of_height_one_equals_torch(case):
    c_in, c_out, k, length, stride, pads, dil, groups = case
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(7, c_in, length, generator=gen, dtype=torch.float64)
    w = torch.randn(c_out, c_in // groups, k, generator=gen, dtype=torch.float64)
    b = torch.randn(c_out, generator=gen, dtype=torch.float64)
    want = F.conv1d(F.pad(x, pads), w, b, stride, 0, dil, groups)
    got = conv.conv(x, w, b, (stride,), pads, (dil,), groups)
    assert got.shape == want.shape
    assert float((got - want).abs().max()) <= 1e-13 * float(want.abs().max())


def test_float32_uses_torch():
    x = torch.randn(3, 4, 6, 6)
    w = torch.randn(4, 2, 3, 3)
    got = conv.conv(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 2)
    assert torch.equal(got, F.conv2d(x, w, None, 1, 1, 1, 2))


GROUPED = [  # channels, outputs per group / inputs per group, kernel, h x w, strides, pads, dilations
    (3, 1, (3, 3), (9, 11), (1, 1), (1, 1, 1, 1), (1, 1)),
    (4, 2, (3, 3), (16, 16), (2, 2), (1, 1, 1, 1), (1, 1)),  # two outputs per channel, stride 2
    (5, 1, (3, 2), (7, 8), (2, 1), (0, 1, 2, 0), (1, 1)),
    (2, 3, (3, 3), (10, 9), (1, 2), (2, 2, 2, 2), (2, 3)),
    (6, 1, (5, 5), (8, 8), (3, 2), (2, 2, 2, 2), (1, 1)),  # stride 3: nine phases
    (8, 1, (1, 1), (8, 8), (2, 2), (0, 0, 0, 0), (1, 1)),
    (3, 1, (4, 4), (9, 7), (2, 3), (3, 0, 1, 2), (2, 1)),
    (4, 1, (3, 3), (3, 2), (1, 1), (0, 1, 0, 0), (1, 1)),  # one output row
    (6, 2, (5, 5), (2, 2), (1, 1), (2, 2, 2, 2), (1, 1)),  # small images: one matrix per channel
    (3, 1, (3, 3), (2, 3), (2, 1), (2, 1, 1, 2), (1, 2)),
]


@pytest.mark.parametrize("chunk_bytes, block_probes", [(1, 1), (5000, 3), (conv.DEPTHWISE_CHUNK_BYTES, conv.DENSE_BLOCK_PROBES)],
                         ids=["one-probe", "uneven", "default"])
@pytest.mark.parametrize("case", GROUPED)
@pytest.mark.parametrize("with_bias", [False, True])
def test_depthwise_and_grouped_conv_equal_torch(case, chunk_bytes, block_probes, with_bias, monkeypatch):
    """Depthwise (one input channel per group, m outputs each) by shifted runs of the input's
    stride phases or as matrices a block at a time, and grouped (two input channels per group)
    group by group: torch's sums."""
    monkeypatch.setattr(conv, "DEPTHWISE_CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(conv, "DENSE_BLOCK_BYTES", chunk_bytes)
    monkeypatch.setattr(conv, "DENSE_BLOCK_PROBES", block_probes)
    channels, m, k, hw, strides, pads, dil = case
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(7, channels * 2, *hw, generator=gen, dtype=torch.float64)
    top, left, bottom, right = pads
    for per_group in (1, 2):
        groups = channels * 2 // per_group
        w = torch.randn(groups * m, per_group, *k, generator=gen, dtype=torch.float64)
        b = torch.randn(groups * m, generator=gen, dtype=torch.float64) if with_bias else None
        want = F.conv2d(F.pad(x, (left, right, top, bottom)), w, b, strides, 0, dil, groups)
        got = conv.conv(x, w, b, strides, pads, dil, groups)
        assert got.shape == want.shape
        assert float((got - want).abs().max()) <= 1e-13 * float(want.abs().max())


def test_small_images_take_each_channels_matrix():
    """The depthwise convolutions of small images above are computed as matrices (else the test
    above would not reach that path), and those of larger ones by taps."""
    x = torch.zeros(7, 6, 2, 2, dtype=torch.float64)
    assert conv._depthwise_dense_pays(x, torch.zeros(12, 1, 5, 5), (1, 1), (2, 2, 2, 2), (1, 1))
    assert conv._depthwise_dense_pays(torch.zeros(7, 3, 2, 3), torch.zeros(3, 1, 3, 3), (2, 1), (2, 1, 1, 2), (1, 2))
    assert not conv._depthwise_dense_pays(torch.zeros(7, 3, 9, 11), torch.zeros(3, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1))
    assert not conv._depthwise_dense_pays(x[:3], torch.zeros(12, 1, 5, 5), (1, 1), (2, 2, 2, 2), (1, 1))  # fewer probes than cells
    # MobileNet's 3x3 on 8x8 images: as matrices at stride 2 (16 outputs), by taps at stride 1 (64)
    x8 = torch.zeros(65, 4, 8, 8, dtype=torch.float64)
    assert conv._depthwise_dense_pays(x8, torch.zeros(4, 1, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1))
    assert not conv._depthwise_dense_pays(x8, torch.zeros(4, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1))


def test_kept_depthwise_matrices_are_those_of_the_padding_asked():
    """A band of rows runs the node's convolution with pads of its own (analysis/bands.py), on
    the node's kept matrices: a band as tall as the image with other pads has other matrices, and
    each call gets those of its own pads, built once."""
    gen = torch.Generator().manual_seed(7)
    w = torch.randn(6, 1, 3, 3, generator=gen, dtype=torch.float64)
    node = ir.Conv("dw", (0,), (6, 4, 4), weight=w, bias=None, strides=(1, 1), pads=(1, 1, 1, 1), dilations=(1, 1), groups=6)
    x = torch.randn(5, 6, 4, 4, generator=gen, dtype=torch.float64)
    for _ in range(2):
        for pads in [(1, 1, 1, 1), (0, 1, 2, 1), (2, 1, 0, 1)]:
            want = F.conv2d(F.pad(x, (pads[1], pads[3], pads[0], pads[2])), w, None, 1, 0, 1, 6)
            assert torch.allclose(node.linear_padded(x, pads), want, rtol=0, atol=1e-13)
    assert len(node._derived) == 3
    for top in range(conv.KEPT_DEPTHWISE + 3):  # the oldest are dropped
        node.linear_padded(x, (top, 1, 1, 1))
    assert len(node._derived) == conv.KEPT_DEPTHWISE
    assert ("depthwise matrices", 4, 4, (1, 1), (conv.KEPT_DEPTHWISE + 2, 1, 1, 1), (1, 1)) in node._derived


def test_conv_node_keeps_depthwise_matrices_of_its_weight():
    """A Conv node builds a depthwise convolution's matrices once (so even a call with fewer
    probes than input cells takes them), and builds them again for a weight put in its place
    (as re-initialisation does on a copy): always torch's result for the weight it holds."""
    gen = torch.Generator().manual_seed(5)
    w = torch.randn(8, 1, 3, 3, generator=gen, dtype=torch.float64)
    node = ir.Conv("dw", (0,), (8, 2, 2), weight=w, bias=torch.randn(8, generator=gen, dtype=torch.float64),
                   strides=(2, 2), pads=(1, 1, 1, 1), dilations=(1, 1), groups=8)
    assert conv._depthwise_dense_pays(torch.zeros(3, 8, 4, 4), w, (2, 2), (1, 1, 1, 1), (1, 1), kept=True)
    for probes in (3, 40):
        x = torch.randn(probes, 8, 4, 4, generator=gen, dtype=torch.float64)
        want = F.conv2d(x, node.weight, node.bias, 2, 1, 1, 8)
        assert torch.allclose(node.forward([x]), want, rtol=0, atol=1e-13)
        (kept_weight, maps), = node._derived.values()
        assert kept_weight is node.weight and maps.shape == (8, 16, 1, 2, 2)
        node = copy.deepcopy(node)
        node.weight = torch.randn(8, 1, 3, 3, generator=gen, dtype=torch.float64)


def _pool_cases(count: int, seed: int):
    """Random max pools: 1-3 spatial axes, kernels, strides, dilations, asymmetric pads, ceil_mode."""
    gen = torch.Generator().manual_seed(seed)

    def draw(lo, hi):
        return int(torch.randint(lo, hi + 1, (1,), generator=gen))

    cases = []
    for _ in range(count):
        n = draw(1, 3)
        k = tuple(draw(1, 3) for _ in range(n))
        s = tuple(draw(1, 3) for _ in range(n))
        d = tuple(draw(1, 2) for _ in range(n))
        pads = tuple(draw(0, k[i % n] - 1) for i in range(2 * n))
        size = tuple(draw((k[i] - 1) * d[i] + 1, 7) for i in range(n))
        ceil = draw(0, 3) == 0
        out = []
        for i in range(n):
            span = size[i] + pads[i] + pads[i + n] - (k[i] - 1) * d[i] - 1
            o = (-(-span // s[i]) if ceil else span // s[i]) + 1
            if ceil and (o - 1) * s[i] >= size[i] + pads[i]:  # a window may not start in the end pad
                o -= 1
            out.append(o)
        cases.append((k, s, d, pads, size, ceil, tuple(out)))
    return cases


@pytest.mark.parametrize("unwritten", ["as chosen", "where it can"])
@pytest.mark.parametrize("kernel,strides,dil,pads,size,ceil,out", _pool_cases(60, seed=3))
def test_max_pool_max_and_winners_are_the_candidates_max_and_first_argmax(kernel, strides, dil, pads, size, ceil, out, unwritten, monkeypatch):
    """MaxPool reduces its windows axis by axis; that gives the candidates' maximum and their first
    argmax (row-major), with ties (ReLU zeros, equal values) everywhere and -inf padding, whether
    the padding is a copy or skipped (`taps.window_step_padded`, also tried wherever it can run)."""
    from regionaudit.ir import MaxPool

    if unwritten == "where it can":
        def inside(self, spatial):
            n = len(self.kernel)
            spans = [tap_spans(spatial[a], self.kernel[a], self.strides[a], self.dilations[a], self.shape[-n + a], self.pads[a]) for a in range(n)]
            return all((0, self.shape[-n + a]) in spans[a] for a in range(n))

        monkeypatch.setattr(MaxPool, "_pads_unwritten", inside)

    gen = torch.Generator().manual_seed(1)
    x = torch.randint(-2, 3, (12, 2, *size), generator=gen).to(torch.float64).clamp(min=0)
    node = MaxPool("pool", (0,), (2, *out), kernel=kernel, strides=strides, pads=pads, dilations=dil, ceil_mode=ceil)
    cand = node.candidates(x)
    assert torch.equal(node.winners(x).long(), cand.argmax(-1))
    assert torch.equal(node.forward([x]), cand.amax(-1).reshape(12, 2, *out))
    rows = torch.randint(0, 12, (30,), generator=gen)
    windows = torch.randint(0, cand.shape[1], (30,), generator=gen)
    assert torch.equal(node.candidates_at(x, rows, windows), cand[rows, windows])
    # tangents: each window passes its winner's cell; the taps are the candidates, padding 0
    dz = torch.randn(3, 12, 2, *size, generator=gen, dtype=torch.float64)
    dcand = node.candidates(dz.reshape(36, 2, *size)).reshape(3, 12, *cand.shape[1:])
    win = cand.argmax(-1)[None, :, :, None].expand(3, -1, -1, 1)
    assert torch.equal(node.tangent(x, dz).reshape(3, 12, -1), dcand.gather(-1, win)[..., 0])
    assert torch.equal(node.tangent(x, dz[:, :1]).reshape(3, 12, -1), dcand[:, :1].expand(3, 12, -1, -1).gather(-1, win)[..., 0])
    taps = node.taps(dz.reshape(36, 2, *size), value=0.0)
    padded = torch.isinf(node.candidates(x)[:1]).expand(36, -1, -1)
    assert torch.equal(torch.stack([t.reshape(36, -1) for t in taps], -1), dcand.reshape(36, *cand.shape[1:]).masked_fill(padded, 0.0))


def test_window_max_winners_are_the_first_argmax():
    from regionaudit.ir import WindowMax

    gen = torch.Generator().manual_seed(2)
    x = torch.randint(-1, 2, (7, 3, 4, 5), generator=gen).to(torch.float64)
    node = WindowMax("max", (0,), (3, 4), kernel=(5,), strides=(1,), pads=(0, 0), dilations=(1,))
    assert torch.equal(node.winners(x).long(), x.reshape(7, -1, 5).argmax(-1))
    assert torch.equal(node.forward([x]), x.amax(-1))


def test_max_pool_winners_of_windows_over_255_cells_are_the_first_argmax():
    """Codes of windows with more than 255 cells are int32, not uint8; ties as above."""
    from regionaudit.ir import MaxPool

    gen = torch.Generator().manual_seed(4)
    x = torch.randint(-2, 3, (5, 2, 19, 20), generator=gen).to(torch.float64).clamp(min=0)
    node = MaxPool("pool", (0,), (2, 2, 2), kernel=(16, 17), strides=(3, 3), pads=(0, 0, 0, 0), dilations=(1, 1))
    cand = node.candidates(x)
    assert cand.shape[-1] > 255
    assert torch.equal(node.winners(x).long(), cand.argmax(-1))
    assert torch.equal(node.forward([x]), cand.amax(-1).reshape(5, 2, 2, 2))


def _transpose_cases():
    cases = []
    for k, s, top, bottom, op in itertools.product((1, 2, 3, 4), (1, 2, 3), (0, 1), (0, 2), (0, 1, 2)):
        if op < s and top < k and bottom < k:
            cases.append(((k, max(1, k - 1)), (s, max(1, s - 1)), (top, bottom, bottom, top), (op, min(op, max(0, s - 2)))))
    return cases


@pytest.mark.parametrize("with_bias,groups", [(True, 1), (False, 1), (True, 2), (False, 4)])
@pytest.mark.parametrize("kernel,strides,pads,output_padding", _transpose_cases())
def test_conv_transpose_by_phases_equals_torch(kernel, strides, pads, output_padding, with_bias, groups):
    """A 2-D transposed convolution as convolutions of its stride phases (one where the stride
    divides the kernel), group by group, equals torch's full transposed convolution, cropped by
    the pads and extended by output_padding (cells the bias alone reaches), on non-square images."""
    from regionaudit.conv import conv_transpose

    gen = torch.Generator().manual_seed(sum(kernel) * 31 + sum(strides) * 7 + sum(pads) + sum(output_padding))
    x = torch.randn(3, 4, 5, 6, generator=gen, dtype=torch.float64)
    w = torch.randn(4, 5 * 4 // groups if groups > 1 else 5, *kernel, generator=gen, dtype=torch.float64)
    b = torch.randn(w.shape[1] * groups, generator=gen, dtype=torch.float64) if with_bias else None
    top, left, bottom, right = pads
    full = F.conv_transpose2d(x, w, None, strides, groups=groups)
    ref = F.pad(full, (-left, output_padding[1] - right, -top, output_padding[0] - bottom))
    if b is not None:
        ref = ref + b.reshape(1, -1, 1, 1)
    got = conv_transpose(x, w, b, strides, pads, output_padding, (1, 1), groups)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, rtol=1e-13, atol=1e-13)


def test_a_transposed_convolution_keeps_its_phase_kernels_with_its_weight():
    """The stride phases' kernels are made once per weight and kept with the node; a weight put
    in its place (as re-initialisation does) gets its own, whose outputs are torch's."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(3, 4, 5, 5, generator=gen, dtype=torch.float64)
    w1, w2 = (torch.randn(4, 3, 4, 4, generator=gen, dtype=torch.float64) for _ in range(2))
    node = ir.ConvTranspose("t", (0,), (3, 10, 10), weight=w1, strides=(2, 2), pads=(1, 1, 1, 1),
                            output_padding=(0, 0), dilations=(1, 1), groups=1)
    first = node.forward([x])
    kept = [k for _, k in node._derived.values()]
    assert len(kept) == 1 and torch.equal(node.forward([x]), first)
    assert [k for _, k in node._derived.values()][0] is kept[0]  # (made once)
    torch.testing.assert_close(first, F.conv_transpose2d(x, w1, None, 2, 1), rtol=1e-13, atol=1e-13)
    node.weight = w2
    torch.testing.assert_close(node.forward([x]), F.conv_transpose2d(x, w2, None, 2, 1), rtol=1e-13, atol=1e-13)


def test_inspect_lists_a_convolutions_settings():
    """`inspect`'s detail column: what differs from a plain convolution (groups, stride, pads,
    dilation, and a transposed one's output padding), nothing for a plain one."""
    w = torch.zeros(8, 2, 3, 3, dtype=torch.float64)
    plain = ir.Conv("c", (0,), (8, 6, 6), weight=w, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), groups=1)
    assert plain.describe() == "8 filters 3x3"
    busy = ir.Conv("c", (0,), (8, 4, 4), weight=w, strides=(2, 1), pads=(1, 1, 2, 2), dilations=(2, 2), groups=2)
    assert busy.describe() == "8 filters 3x3, groups 2, stride 2,1, pads 1,1,2,2, dilation 2,2"
    t = ir.ConvTranspose("t", (0,), (8, 9, 9), weight=torch.zeros(4, 2, 3, 3, dtype=torch.float64), strides=(2, 2),
                         pads=(1, 1, 1, 1), output_padding=(1, 1), dilations=(1, 1), groups=4)
    assert t.describe() == "8 filters 3x3, transposed, groups 4, stride 2,2, pads 1,1,1,1, output padding 1,1"


def test_a_narrow_product_is_the_unfolded_product_of_at_most_16_channels(monkeypatch):
    """`narrow_product` says which convolutions `conv` runs as the unfolded product of at most 16
    output channels' weights, as `conv` chooses them; refill counts their multiply-adds twice."""
    ran = []
    unfolded = conv._conv2d_unfolded
    monkeypatch.setattr(conv, "_conv2d_unfolded", lambda *a: ran.append(True) or unfolded(*a))
    narrow = []
    cases = itertools.product([1, 3, 8], [4, 16, 32], [1, 3, 4], [(1, 1), (2, 2), (2, 1)], [(0, 0, 0, 0), (1, 1, 1, 1)], [6, 15])
    for c_in, c_out, k, strides, pads, size in cases:
        w = torch.randn(c_out, c_in, k, k, dtype=torch.float64)
        x = torch.randn(3, c_in, size, size, dtype=torch.float64)
        ran.clear()
        got = conv.conv(x, w, None, strides, pads, (1, 1), 1)
        want = F.conv2d(F.pad(x, (pads[1], pads[3], pads[0], pads[2])), w, None, strides)
        assert torch.allclose(got, want, rtol=1e-12, atol=1e-12)
        is_narrow = conv.narrow_product((c_in, size, size), w, strides, pads, (1, 1), 1)
        assert is_narrow == (bool(ran) and c_out <= 16)
        narrow.append(is_narrow)
    assert 0 < sum(narrow) < len(narrow)
    assert conv.narrow_product((8, 15, 15), torch.zeros(16, 8, 4, 4), (2, 2), (0, 0, 0, 0), (1, 1), 1)
    assert not conv.narrow_product((8, 15, 15), torch.zeros(16, 8, 4, 4), (2, 2), (0, 0, 0, 0), (1, 1), 2)


def test_a_depthwise_convolution_by_taps_costs_more_per_multiply_add(monkeypatch):
    """`mac_cost` counts a multiply-add of a depthwise convolution that `conv` runs by its taps
    (elementwise passes) DEPTHWISE_TAP_COST times, one it runs as matrices (small images) once, a
    narrow product's twice, a wide product's once."""
    ran = []  # the inputs the taps ran on (building the matrices runs them on basis images)
    taps = conv._conv2d_depthwise
    monkeypatch.setattr(conv, "_conv2d_depthwise", lambda *a: ran.append(a[0]) or taps(*a))
    seen = set()
    for size, stride, c in itertools.product([2, 4, 8, 16], [1, 2], [4, 12]):
        w = torch.randn(c, 1, 3, 3, dtype=torch.float64)
        x = torch.randn(3, c, size, size, dtype=torch.float64)
        ran.clear()
        got = conv.conv(x, w, None, (stride, stride), (1, 1, 1, 1), (1, 1), c, cache={})
        assert torch.allclose(got, F.conv2d(x, w, None, stride, 1, 1, c), rtol=1e-12, atol=1e-12)
        cost = conv.mac_cost((c, size, size), w, (stride, stride), (1, 1, 1, 1), (1, 1), c)
        assert cost == (conv.DEPTHWISE_TAP_COST if any(r is x for r in ran) else 1.0)
        seen.add(cost)
    assert seen == {1.0, float(conv.DEPTHWISE_TAP_COST)}
    assert conv.mac_cost((8, 15, 15), torch.zeros(16, 8, 4, 4), (2, 2), (0, 0, 0, 0), (1, 1), 1) == 2.0
    assert conv.mac_cost((8, 15, 15), torch.zeros(64, 8, 4, 4), (2, 2), (0, 0, 0, 0), (1, 1), 1) == 1.0


@pytest.mark.parametrize("strides, kernel, pads", [((2, 2), 1, 0), ((2, 3), 1, 0), ((1, 2), 1, 0), ((1, 1), 1, 0),
                                                    ((2, 2), 1, 1), ((2, 2), 3, 0)])
def test_a_strided_pointwise_convolution_is_one_of_its_cells(strides, kernel, pads):
    """A 1x1 convolution without padding at a stride above 1 reads a sublattice of its input: the
    convolution at stride 1 of those cells is the node's output; other convolutions have none."""
    gen = torch.Generator().manual_seed(sum(strides) + kernel + pads)
    x = torch.randn(5, 4, 7, 9, generator=gen, dtype=torch.float64)
    node = ir.Conv("c", (0,), (3, 1, 1), weight=torch.randn(3, 4, kernel, kernel, generator=gen, dtype=torch.float64),
                   bias=torch.randn(3, generator=gen, dtype=torch.float64), strides=strides, pads=(pads,) * 4,
                   dilations=(1, 1))
    index = node.sublattice()
    if kernel != 1 or pads or strides == (1, 1):
        assert index is None
        return
    want = F.conv2d(x, node.weight, node.bias, strides)
    assert torch.allclose(node.forward_on_sublattice(x[(..., *index)]), want, rtol=1e-14, atol=1e-14)
