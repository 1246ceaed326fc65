"""An exact distance runs the image layers on the rows its tangents can be nonzero in (bands.py):
the rows a layer reaches are those a full layer makes nonzero, and the distances, every margin's
squared gradient and the nearest units are those of the full layers and of autograd."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import netfactory as nf
import plainpath
from regionaudit import ir
from regionaudit.analysis import bands
from regionaudit.analysis import distance as D
from regionaudit.analysis.distance import boundary_distances, min_memory
from regionaudit.importer import import_model

SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"


@pytest.mark.parametrize("kernel,stride,pad,dil", list(itertools.product([1, 2, 3], [1, 2, 3], [0, 1, 2], [1, 2])))
def test_rows_reached_are_the_rows_a_layer_makes_nonzero(kernel, stride, pad, dil):
    """Positive weights on an input that is 1 on rows lo..hi-1: `reached` holds every output row
    that is nonzero, for every band of a 9-row image, and no other where the band is at least as
    wide as the dilation (a narrower band can fall between a window's taps)."""
    h = 9
    weight = torch.ones(1, 1, kernel, 1, dtype=torch.float64)
    for lo, hi in [(a, b) for a in range(h) for b in range(a + 1, h + 1)]:
        x = torch.zeros(1, 1, h, 3, dtype=torch.float64)
        x[:, :, lo:hi] = 1
        y = F.conv2d(F.pad(x, (0, 0, pad, pad)), weight, None, (stride, 1), 0, (dil, 1))
        if y.shape[2] == 0:
            continue
        rows = (y[0, 0].abs().sum(1) > 0).nonzero().flatten().tolist()
        a, b = bands.reached((lo, hi), kernel, stride, pad, dil, y.shape[2])
        assert set(rows) <= set(range(a, b))
        if hi - lo >= dil:
            assert list(range(a, b)) == rows


def test_rows_of_basis_chunks():
    assert bands.of_basis((2, 5, 4), 4, 3) == (1, 2)  # row 1 of channel 0
    assert bands.of_basis((2, 5, 4), 6, 4) == (1, 3)
    assert bands.of_basis((2, 5, 4), 21, 3) == (0, 1)  # channel 1 row 0
    assert bands.of_basis((2, 5, 4), 22, 3) == (0, 2)
    assert bands.of_basis((2, 5, 4), 18, 4) == (0, 5)  # across two channels: every row
    assert bands.of_basis((7,), 0, 3) is None  # not an image


@pytest.mark.parametrize("into", [(0, 9), (2, 6), (3, 4), (0, 1), (7, 9), (5, 5)])
def test_rows_among_zeros_are_the_rows_of_the_whole(into):
    """`rows_of` gives rows `into` of a tensor that is x on rows lo..lo+3 and zero elsewhere, for
    every overlap of the two (none, at either end, inside): each row once, the others zeros."""
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for lo in range(0, 8):
        whole = torch.zeros(2, 3, 12, 5, dtype=torch.float64)
        whole[..., lo : lo + 4, :] = x
        assert torch.equal(bands.rows_of(x, (lo, lo + 4), into), whole[..., into[0] : into[1], :])


def _image_net(seed: int) -> ir.Network:
    """Every layer kind that runs on bands: padded, strided, dilated, grouped and depthwise
    convolutions, an asymmetrically padded one, PReLU per channel, BatchNorm, a residual sum of
    two bands, a clip, a max pool after the first ReLU (shared tangent) and padded overlapping
    ones later."""
    g = nf.Builder((2, 13, 9), seed)
    x = g.relu(g.conv(0, 4, 3, pad=1), "prelu")
    x = g.scale(g.conv(x, 4, 3, stride=2, pad=1, groups=2))
    x = g.relu(g.conv(g.relu(x), 4, 3, pad=1, groups=4))  # depthwise
    c_in, h, w = g.shape(x)
    oh, ow = h + 1 + 0 - 2 + 1, w + 0 + 2 - 2 + 1
    asym = g._add(ir.Conv(g.name("Conv"), (x,), (4, oh, ow), weight=g.randn(4, c_in, 2, 2, std=0.5), bias=g.randn(4, std=0.3),
                          strides=(1, 1), pads=(1, 0, 0, 2), dilations=(1, 1), groups=1))
    y = g.relu(asym)
    y = g.relu(g.sum(y, g.conv(y, 4, 3, pad=2, dil=2)))
    y = g.maxpool(g.clip(y, -0.5, 1.5), 3, 2, pad=1)
    return g.network(g.dense(g.flatten(y), 3))


def _pooled_first_net(seed: int) -> ir.Network:
    g = nf.Builder((1, 12, 11), seed)
    x = g.maxpool(g.relu(g.conv(0, 3, 3, pad=1)), 2, 2)
    x = g.maxpool(g.relu(g.conv(x, 4, 3, pad=1)), 2, 2, ceil=True)
    return g.network(g.dense(g.flatten(g.relu(g.conv(x, 2, 1))), 2))


def _broadcast_sum_net(seed: int) -> ir.Network:
    """A residual sum whose second term, one row high, is broadcast along the height: its tangent
    spreads over every row, whatever rows the first term's band holds."""
    g = nf.Builder((1, 6, 8), seed)
    x = g.relu(g.conv(0, 2, 3))  # (2, 4, 6)
    tall = g._add(ir.Conv(g.name("Conv"), (0,), (2, 1, 6), weight=g.randn(2, 1, 6, 3, std=0.4), bias=g.randn(2, std=0.3),
                          strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), groups=1))
    y = g.relu(g.sum(x, g.relu(tall)))
    return g.network(g.dense(g.flatten(g.relu(g.conv(y, 2, 3, pad=1))), 2))


def _shuffle_net(seed: int) -> ir.Network:
    """ShuffleNet's unit: a channel split (Pad with negative channel pads), a Concat of the two
    branches, the channel shuffle (Reshape, Transpose, Reshape); then a Scale whose factors vary
    along the height and a Pad that pads rows, which the band does not pass through."""
    g = nf.Builder((2, 12, 9), seed)
    x = g.relu(g.conv(0, 4, 3, pad=1))
    left = g._add(ir.Pad(g.name("Pad"), (x,), (2, 12, 9), pads=(0, 0, 0, -2, 0, 0)))
    right = g._add(ir.Pad(g.name("Pad"), (x,), (2, 12, 9), pads=(-2, 0, 0, 0, 0, 0)))
    y = g.concat([left, g.relu(g.conv(right, 2, 3, pad=1))], axis=0)
    y = g.reshape(g.transpose(g.reshape(y, (2, 2, 12, 9)), (1, 0, 2, 3)), (4, 12, 9))
    y = g.relu(g.conv(y, 4, 3, pad=1))
    tall = g._add(ir.Scale(g.name("Mul"), (y,), (4, 12, 9), mul=0.5 + g.randn(4, 12, 1).abs(), add=g.randn(4, 12, 1, std=0.3)))
    y = g._add(ir.Pad(g.name("Pad"), (g.relu(tall),), (4, 14, 9), pads=(0, 1, 0, 0, 1, 0)))
    return g.network(g.dense(g.flatten(g.relu(g.conv(y, 2, 3, stride=2))), 3))


def _channels_last_net(seed: int) -> ir.Network:
    """An export of a channels-last model: its input (H, W, C) moved to channels first by a
    Transpose, which the exact distance's identity rows then stand for (`basis_node`)."""
    g = nf.Builder((11, 9, 2), seed)
    x = g.relu(g.conv(g.relu(g.conv(g.transpose(0, (2, 0, 1)), 4, 3, pad=1)), 4, 3, pad=1))
    x = g.relu(g.sum(x, g.conv(x, 4, 3, pad=1)))
    return g.network(g.dense(g.flatten(g.relu(g.conv(x, 3, 3, stride=2))), 3))


def _flat_input_net(seed: int) -> ir.Network:
    """A flat input made a channels-last image (Reshape), then moved to channels first
    (Transpose): the identity rows stand for the Transpose's output."""
    g = nf.Builder((9 * 7 * 2,), seed)
    x = g.transpose(g.reshape(0, (9, 7, 2)), (2, 0, 1))
    x = g.relu(g.conv(g.relu(g.conv(x, 3, 3, pad=1)), 3, 3, pad=1))
    return g.network(g.dense(g.flatten(g.relu(g.conv(x, 2, 3, stride=2))), 3))


def _linear_map(n_in: int, n_out: int) -> torch.Tensor:
    """Linear interpolation from n_in cells to n_out (half-pixel centres), as (n_out, n_in)."""
    eye = torch.eye(n_in, dtype=torch.float64).unsqueeze(1)
    return F.interpolate(eye, size=n_out, mode="linear", align_corners=False)[:, 0].T.contiguous()


def _resize_net(seed: int) -> ir.Network:
    """Resizes (ir.Resample): nearest x2 along both axes, linear from 5 to 7 rows, and one along
    the width alone, which keeps the band's rows."""
    g = nf.Builder((2, 10, 8), seed)
    x = g.relu(g.conv(0, 3, 3, stride=2, pad=1))  # (3, 5, 4)
    c, h, w = g.shape(x)
    up = torch.eye(h, dtype=torch.float64).repeat_interleave(2, 0), torch.eye(w, dtype=torch.float64).repeat_interleave(2, 0)
    x = g._add(ir.Resample(g.name("Resize"), (x,), (c, 2 * h, 2 * w), axes=(1, 2), matrices=list(up)))
    y = g.relu(g.conv(x, 3, 3, pad=1))  # (3, 10, 8)
    y = g.relu(g.conv(y, 3, 3, stride=2, pad=1))  # (3, 5, 4)
    y = g._add(ir.Resample(g.name("Resize"), (y,), (3, 7, 4), axes=(1,), matrices=[_linear_map(5, 7)]))
    y = g.relu(g.conv(y, 3, 3, pad=1))
    y = g._add(ir.Resample(g.name("Resize"), (y,), (3, 7, 6), axes=(2,), matrices=[_linear_map(4, 6)]))
    return g.network(g.dense(g.flatten(g.relu(g.conv(y, 2, 3, pad=1))), 3))


def _conv_transpose(g: nf.Builder, x: int, c_out: int, k: int, stride: int, pads=(0, 0, 0, 0), out_pad=(0, 0), dil: int = 1,
                    groups: int = 1) -> int:
    c, h, w = g.shape(x)
    oh = (h - 1) * stride - pads[0] - pads[2] + (k - 1) * dil + 1 + out_pad[0]
    ow = (w - 1) * stride - pads[1] - pads[3] + (k - 1) * dil + 1 + out_pad[1]
    return g._add(ir.ConvTranspose(g.name("ConvTranspose"), (x,), (c_out, oh, ow), weight=g.randn(c, c_out // groups, k, k, std=0.4),
                                   bias=g.randn(c_out, std=0.3), strides=(stride, stride), pads=tuple(pads), output_padding=out_pad,
                                   dilations=(dil, dil), groups=groups))


def _conv_transpose_net(seed: int) -> ir.Network:
    """Transposed convolutions (a decoder's upsampling): stride 2 with padding and output padding,
    grouped, and a dilated one with asymmetric pads."""
    g = nf.Builder((2, 9, 7), seed)
    x = g.relu(g.conv(0, 4, 3, stride=2, pad=1))  # (4, 5, 4)
    x = g.relu(_conv_transpose(g, x, 4, 3, 2, pads=(1, 1, 1, 1), out_pad=(1, 1)))  # (4, 10, 8)
    x = g.relu(g.conv(x, 4, 3, stride=2, pad=1))  # (4, 5, 4)
    x = g.relu(_conv_transpose(g, x, 4, 2, 2, groups=2))  # (4, 10, 8)
    x = g.relu(_conv_transpose(g, x, 3, 3, 1, pads=(1, 0, 2, 1), dil=2))
    return g.network(g.dense(g.flatten(g.relu(g.conv(x, 2, 3, stride=2))), 3))


def _sample(name: str) -> ir.Network:
    """A shipped sample model: its image has the exported batch axis (1, C, H, W)."""
    return import_model(str(SAMPLES / f"{name}.onnx")).network


@pytest.mark.parametrize("net", [_image_net(1), _image_net(2), _pooled_first_net(3), nf.make("cnn_max", 4), nf.make("cnn_concat", 5),
                                 _broadcast_sum_net(6), _shuffle_net(7), _channels_last_net(8), _resize_net(9), _conv_transpose_net(10),
                                 _flat_input_net(12), _sample("digits_cnn"),
                                 _sample("digits_resnet")],
                         ids=["layers-1", "layers-2", "pools", "cnn-max", "cnn-concat", "broadcast-sum", "shuffle", "channels-last",
                              "resize", "conv-transpose", "flat-input", "sample-cnn", "sample-resnet"])
@pytest.mark.parametrize("budget", [1, 7, None], ids=["one-direction", "few", "default"])
def test_banded_layers_give_the_full_layers_distances(net, budget, monkeypatch):
    """Chunks of one, a few and all directions (bands of every width): every kink node's squared
    gradients as the full layers give them (to rounding), the same nearest units, and the
    distances of autograd's Jacobian."""
    pts = torch.randn(3, *net.input_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    memory = None if budget is None else budget * min_memory(net)
    seen = []
    nearest = D._nearest
    monkeypatch.setattr(D, "_nearest", lambda network, order, kinks, sq, n: seen.append({i: v.clone() for i, v in sq.items()}) or nearest(network, order, kinks, sq, n))
    banded = boundary_distances(net, pts, max_memory=memory)
    monkeypatch.setattr(bands, "of_basis", lambda *args: None)
    whole = boundary_distances(net, pts, max_memory=memory)
    half = len(seen) // 2  # one entry per chunk of points, in each run
    assert half and len(seen) == 2 * half
    for got, want in zip(seen[:half], seen[half:]):
        for i, ref in want.items():
            assert float((got[i] - ref).abs().max()) <= 1e-13 * float(ref.abs().max())
            assert torch.equal(got[i] == 0, ref == 0)
    for b, w, x in zip(banded, whole, pts):
        assert (b.node, b.unit) == (w.node, w.unit) and b.distance == pytest.approx(w.distance, rel=1e-12)
        dist, node, unit = plainpath.distance(net, x)
        assert b.distance == pytest.approx(dist, rel=1e-12, abs=1e-15) and (b.node, b.unit) == (node, unit)


def test_a_pool_of_the_first_relu_reads_the_rows_of_its_band_alone(monkeypatch):
    """The max pool after the first ReLU (margins from the shared tangent's Gram matrices) reads
    only the input rows its band's windows read, from a tangent that holds those rows, and passes
    on its winners' tangents from them: the test above checks the values; this one that such
    narrower tangents occur, one direction per chunk."""
    net = _pooled_first_net(3)
    pts = torch.randn(2, *net.input_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    calls = []
    pool_of_masked = D._pool_of_masked

    def spy(pool, dz, cells, masked, *rest):
        calls.append((dz.shape[-2], masked.size[0], rest[-1]))
        return pool_of_masked(pool, dz, cells, masked, *rest)

    monkeypatch.setattr(D, "_pool_of_masked", spy)
    boundary_distances(net, pts, max_memory=min_memory(net))
    assert any(rows < height and first > 0 for rows, height, first in calls)
    assert all(rows <= height for rows, height, _ in calls)


@pytest.mark.parametrize("net", [_image_net(1), _channels_last_net(8), _flat_input_net(12), _sample("digits_resnet")],
                         ids=["layers", "channels-last", "flat-input", "sample-resnet"])
def test_bands_are_narrower_than_the_image(net, monkeypatch):
    """The test above checks bands that exist: with one direction per chunk, the convolutions
    after the first run on fewer rows than the image has, and some read a tangent that holds
    those rows only (its zeros never written)."""
    widths, inputs = [], []
    conv_band = bands.conv_band

    def spy(node, dz, held, band):
        out, rows = conv_band(node, dz, held, band)
        widths.append((rows[1] - rows[0], node.shape[-2]))
        inputs.append(dz.shape[-2] == held[1] - held[0] and held[0] == band[0] and held[1] == band[1])
        return out, rows

    monkeypatch.setattr(bands, "conv_band", spy)
    boundary_distances(net, torch.randn(2, *net.input_shape, dtype=torch.float64), max_memory=min_memory(net))
    assert widths and any(w < h for w, h in widths)
    assert any(inputs)


def _band_runs(monkeypatch, net: ir.Network, layer: str) -> dict[str, list[bool]]:
    """For each node that `bands.<layer>` (conv_band, conv_transpose_band) runs in an exact
    distance in chunks of one direction: whether each run was on fewer output rows than the
    node's image has."""
    seen: dict[str, list[bool]] = {}
    real = getattr(bands, layer)

    def spy(node, dz, held, band):
        out, rows = real(node, dz, held, band)
        seen.setdefault(node.name, []).append(rows[1] - rows[0] < node.shape[-2])
        return out, rows

    monkeypatch.setattr(bands, layer, spy)
    boundary_distances(net, torch.randn(2, *net.input_shape, dtype=torch.float64), max_memory=min_memory(net))
    return seen


def test_the_layers_after_a_resize_run_on_a_band(monkeypatch):
    """The convolutions after each resize run on fewer rows than their image has (the distances:
    the test above), and each resize reaches the rows its map reads the band from."""
    net = _resize_net(9)
    reached = []
    resample_rows = bands.resample_rows

    def rows_spy(node, band):
        out = resample_rows(node, band)
        reached.append((node, band, out))
        return out

    monkeypatch.setattr(bands, "resample_rows", rows_spy)
    seen = _band_runs(monkeypatch, net, "conv_band")
    convs = [n.name for n in net.nodes if isinstance(n, ir.Conv)]
    assert all(any(seen[c]) for c in convs[1:])
    assert reached
    for node, (lo, hi), (a, b) in reached:
        if 1 not in node.axes:
            assert (a, b) == (lo, hi)
            continue
        m = node.matrices[node.axes.index(1)]
        assert (m[:, lo:hi] != 0).any(1).nonzero().flatten().tolist() == list(range(a, b))


def test_the_transposed_convolutions_run_on_a_band(monkeypatch):
    """In the net of transposed convolutions, each runs on fewer output rows than its image has
    for some chunk of directions (the distances: the test of every kind of net above)."""
    net = _conv_transpose_net(10)
    seen = _band_runs(monkeypatch, net, "conv_transpose_band")
    names = [n.name for n in net.nodes if isinstance(n, ir.ConvTranspose)]
    assert sorted(seen) == sorted(names) and all(any(seen[n]) for n in names)


@pytest.mark.parametrize("k,stride,pads,out_pad,dil", [(3, 2, (1, 0, 1, 0), (1, 0), 1), (2, 2, (0, 0, 0, 0), (0, 0), 1),
                                                       (3, 1, (1, 0, 2, 0), (0, 0), 2), (4, 3, (2, 1, 0, 1), (2, 0), 1)])
def test_a_transposed_convolution_of_a_band_is_those_rows_of_the_whole(k, stride, pads, out_pad, dil):
    """For every band of its input, a transposed convolution's output is zero outside the rows
    `conv_transpose_rows` gives, and `conv_transpose_band` gives those rows of the whole layer
    from the band's rows alone."""
    g = nf.Builder((3, 6, 5), 11)
    net = g.network(_conv_transpose(g, 0, 2, k, stride, pads=pads, out_pad=out_pad, dil=dil))
    node = net.nodes[1]
    for lo, hi in [(a, b) for a in range(6) for b in range(a + 1, 7)]:
        x = torch.zeros(2, 3, 6, 5, dtype=torch.float64)
        x[:, :, lo:hi] = torch.randn(2, 3, hi - lo, 5, dtype=torch.float64)
        whole = node.linear([x])
        a, b = bands.conv_transpose_rows(node, (lo, hi))
        assert torch.count_nonzero(whole[:, :, :a]) == 0 and torch.count_nonzero(whole[:, :, b:]) == 0
        for held in [(0, 6), (lo, hi)]:
            y, rows = bands.conv_transpose_band(node, x[:, :, held[0] : held[1]], held, (lo, hi))
            assert rows == (a, b)
            assert torch.allclose(y, whole[:, :, a:b], rtol=1e-13, atol=1e-14)


def _skipping_first_net(seed: int) -> ir.Network:
    """A first convolution 1x1 at stride 2 on an image 80 wide: a chunk of one image row (the
    chunks' default) of an odd row reaches no output row, and its band is empty."""
    g = nf.Builder((1, 6, 80), seed)
    x = g.relu(g.conv(g.relu(g.conv(0, 2, 1, stride=2)), 2, 3, pad=1))
    return g.network(g.dense(g.flatten(x), 2))


def _skipping_resize_net(seed: int) -> ir.Network:
    """A nearest resize to half the height, then convolutions: every other row reaches none."""
    g = nf.Builder((2, 8, 6), seed)
    x = g._add(ir.Resample(g.name("Resize"), (0,), (2, 4, 6), axes=(1,), matrices=[torch.eye(8, dtype=torch.float64)[::2]]))
    return g.network(g.dense(g.flatten(g.relu(g.conv(g.relu(g.conv(x, 3, 3, pad=1)), 2, 3, pad=1))), 2))


def _skipping_middle_net(seed: int) -> ir.Network:
    """A 1x1 convolution at stride 2 after the first layer, then a transposed convolution."""
    g = nf.Builder((2, 7, 6), seed)
    x = g.relu(g.conv(g.relu(g.conv(0, 3, 3, pad=1)), 3, 1, stride=2))
    x = g.relu(_conv_transpose(g, x, 3, 2, 2))
    return g.network(g.dense(g.flatten(g.relu(g.conv(x, 2, 3, pad=1))), 2))


@pytest.mark.parametrize("net", [_skipping_first_net(1), _skipping_resize_net(2), _skipping_middle_net(3)],
                         ids=["first-conv", "resize", "middle"])
@pytest.mark.parametrize("least", [True, False], ids=["one-direction", "default"])
def test_a_band_that_reaches_no_row_is_a_zero_tangent(net, least):
    """Where a layer's stride skips the rows a chunk's band holds, the band after it is empty:
    its tangent holds no rows, the layers after it run on none, and the distances are autograd's."""
    pts = torch.randn(2, *net.input_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    for got, x in zip(boundary_distances(net, pts, max_memory=min_memory(net) if least else None), pts):
        dist, node, unit = plainpath.distance(net, x)
        assert got.distance == pytest.approx(dist, rel=1e-12) and (got.node, got.unit) == (node, unit)


def test_a_transpose_of_the_input_is_where_the_identity_rows_start():
    """The Transpose that alone reads the input stands for it, and so does the last of a chain of
    Reshapes and Transposes; one that shares the input with another reader, or a network without
    one, starts at the input."""
    net = _channels_last_net(8)
    order = D.tangent_order(net)
    assert D.basis_node(net, order, net.last_use(order)) == 1
    net = _flat_input_net(12)
    order = D.tangent_order(net)
    assert D.basis_node(net, order, net.last_use(order)) == 2
    g = nf.Builder((6, 5, 2), 3)
    x = g.conv(g.transpose(0, (2, 0, 1)), 2, 3)
    shared = g.network(g.dense(g.relu(g.sum(g.flatten(g.relu(x)), g.dense(g.flatten(0), 24))), 2))
    order = D.tangent_order(shared)
    assert D.basis_node(shared, order, shared.last_use(order)) == 0
    order = D.tangent_order(_image_net(1))
    assert D.basis_node(_image_net(1), order, _image_net(1).last_use(order)) == 0


@pytest.mark.parametrize("n_dir", [1, 5, 9, 30, 10_000])
@pytest.mark.parametrize("net", [_image_net(1), _channels_last_net(8), _flat_input_net(12), nf.make("mlp", 2)],
                         ids=["image", "channels-last", "flat-input", "mlp"])
def test_basis_chunks_cover_every_direction_once_in_whole_rows(net, n_dir):
    """Every identity row once, in order, at most n_dir at a time; on an image that a
    convolution reads, never across two channels, and whole image rows where n_dir holds one."""
    order = D.tangent_order(net)
    last = net.last_use(order)
    dim = math.prod(net.input_shape)
    root = D.basis_node(net, order, last)
    chunks = D.basis_chunks(net, order, root, dim, n_dir)
    assert [s for s, _ in chunks] == list(itertools.accumulate([0] + [c for _, c in chunks[:-1]]))
    assert sum(c for _, c in chunks) == dim and all(0 < c <= n_dir for _, c in chunks)
    if root == 0 and len(net.input_shape) != 3:
        assert chunks == [(s, min(n_dir, dim - s)) for s in range(0, dim, n_dir)]
        return
    _, h, w = net.nodes[root].shape if root else net.input_shape
    for s, c in chunks:
        assert s // (h * w) == (s + c - 1) // (h * w)
        if n_dir >= w:
            assert s % w == 0 and (c % w == 0 or (s + c) % (h * w) == 0)


def test_a_clip_with_one_bound_per_side_takes_its_slopes_on_the_band(monkeypatch):
    """A ReLU6-like Clip (one number per bound) runs its tangent on the band's rows alone, as a
    ReLU does; the test of the distances above covers its values (its net has such a clip)."""
    net = _image_net(1)
    seen = []
    relu_tangent = D._relu_tangent

    def spy(node, z, dz, inplace, rows):
        if isinstance(node, ir.Clip):
            seen.append(rows)
        return relu_tangent(node, z, dz, inplace, rows)

    monkeypatch.setattr(D, "_relu_tangent", spy)
    boundary_distances(net, torch.randn(2, *net.input_shape, dtype=torch.float64), max_memory=min_memory(net))
    height = net.nodes[[i for i, n in enumerate(net.nodes) if isinstance(n, ir.Clip)][0]].shape[-2]
    assert seen and any(rows is not None and rows[1] - rows[0] < height for rows in seen)


def test_a_channel_split_and_shuffle_keep_the_band(monkeypatch):
    """The convolutions after ShuffleNet's channel split and shuffle still run on a band, and the
    one after a Pad that pads rows on every row (the distances: the test above)."""
    net = _shuffle_net(7)
    seen = _band_runs(monkeypatch, net, "conv_band")
    convs = [n.name for n in net.nodes if isinstance(n, ir.Conv)]
    assert any(seen[convs[1]]) and any(seen[convs[2]])  # after the split, after the shuffle
    assert convs[3] not in seen  # after the rows' padding: the whole layer


@pytest.mark.parametrize("kernel,stride,pad,dil,ceil", [(2, 2, 0, 1, False), (3, 2, 1, 1, False), (3, 1, 1, 2, False),
                                                        (3, 2, 1, 1, True), (2, 3, 1, 1, True), (3, 2, 0, 1, True)])
def test_a_max_pools_windows_of_some_rows_are_those_of_every_window(kernel, stride, pad, dil, ceil):
    """`MaxPool.candidates` and `candidates_by_window` with rows (a, b) pad only the input rows
    those windows read: the same candidates as all windows' (padding included), every band of
    output rows, the empty one too."""
    h, w = 11, 7
    out = []
    for size in (h, w):
        span = (kernel - 1) * dil + 1
        n = (size + 2 * pad - span + (stride - 1 if ceil else 0)) // stride + 1
        if ceil and (n - 1) * stride >= size + pad:  # the last window must start inside
            n -= 1
        out.append(n)
    pool = ir.MaxPool("p", (0,), (3, *out), kernel=(kernel, kernel), strides=(stride, stride), pads=(pad,) * 4,
                      dilations=(dil, dil), ceil_mode=ceil)
    x = torch.randn(2, 3, h, w, dtype=torch.float64)
    every = pool.candidates(x, value=0.0).reshape(2, 3, *out, -1)
    for a, b in itertools.combinations_with_replacement(range(out[0] + 1), 2):
        some = pool.candidates(x, value=0.0, rows=(a, b))
        assert torch.equal(some, every[:, :, a:b].reshape(2, -1, kernel * kernel))
        assert torch.equal(pool.candidates_by_window(x, value=0.0, rows=(a, b)), some.movedim(0, -1))
        # from the input rows those windows read alone (an exact distance's band)
        first, end = bands.pool_input_rows(pool, (a, b), h)
        held = pool.candidates_by_window(x[:, :, first:end], value=0.0, rows=(a, b), first_row=first)
        assert torch.equal(held, some.movedim(0, -1))
