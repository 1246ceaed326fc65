"""Convolution for the IR's Conv node, fast where torch is slow: 2-D, float64, on CPU.

torch has no float64 convolution kernel of its own on CPU (oneDNN is float32 only): it unfolds probe
by probe and multiplies small matrices, which reaches 10-25 % of the machine's float64
matrix-product throughput on the small-channel convolutions of verification-size nets. Here a chunk
of probes sized to stay in cache is copied once into channels-last order with its zero padding,
unfolded (each kernel row is then one contiguous run of kw x C values), and multiplied by the weight
in one call whose shape the BLAS runs near its peak: 1.5-4x faster than torch's, the same sums in
another order (about 1e-15 relative). Where the stride along the height is 1 (on all but the
smallest images), the unfold runs along the width only, channels first, straight from the input, and
each kernel row is one product (`_conv2d_rows`): the unfold is the larger part of the time, and this
one copies kh times less. A 1x1 kernel without padding needs neither padding nor unfold
(`_conv2d_pointwise`). A convolution whose output is much larger than its unfolded input stays with
torch, which writes the output in place. Grouped convolutions are convolved group by group, and
depthwise ones (one input channel per group, as in MobileNets) as a sum of the kernel's taps
(`_conv2d_depthwise`): torch's float64 kernels for both are 1.2-5x slower (3x3 kernels, 2-64
channels per group). On small images, where those taps run mostly over padding, a depthwise
convolution is one matrix per channel (`_conv2d_depthwise_dense`). A 1-D convolution is one of
images one row high. A 2-D transposed convolution is ordinary ones, one per stride phase of its
output (`_conv_transpose2d_phases`): 1.8x faster than torch's for 4x4 kernels at stride 2, 1.15x for
2x2, as fast for 3x3, where interleaving the phases (a copy of runs of one value) takes most of the
time; a grouped one is that, group by group.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Size of one chunk's unfolded input (the matrix product's right operand): large enough for
# efficient products, small enough to stay in the last-level cache. Measured on 3x3 and 4x4
# convolutions with 3-64 channels: 2 MiB is best or within 5 % of it.
CHUNK_BYTES = 1 << 21
# The full unfold's chunk (`_conv2d_unfolded`), half that: its copy and the product's output then
# share a 2 MiB level-2 cache (measured on stride-2 3x3 and 4x4 convolutions from 8 channels into
# 16: 4-9 % faster than 2 MiB alone, the CIFAR nets' density 4-8 %, their distance 3-4 %; the
# row kernels below, whose chunks hold the input once, were 5-20 % slower at 1 MiB)
UNFOLD_CHUNK_BYTES = 1 << 20
# Chunk of a depthwise convolution (its input's phases and one output plane per channel): its
# passes are elementwise, so larger chunks than the products' pay (measured: 8 MiB 10-40 % faster
# than 2 MiB on 3x3 kernels, 3-64 channels, 8-32 pixels)
DEPTHWISE_CHUNK_BYTES = 1 << 23
# A depthwise convolution as matrices (`_conv2d_depthwise_dense`): where their multiply-adds are
# at most this many times the taps' passes, and its blocks of probes x channels (measured on 3x3
# and 5x5 kernels, 2-16 pixels: 1 MiB blocks of 256 probes are best or within 10 % of it)
DENSE_OVER_TAPS = 3.5
DENSE_BLOCK_BYTES = 1 << 20
DENSE_BLOCK_PROBES = 256
# Sets of such matrices a node keeps, one per image size and padding (an exact distance's bands of
# rows take 4-7 per depthwise layer on the benchmark's mobile nets, 12 MB in all on MobileNet v2)
KEPT_DEPTHWISE = 16
# Up to this many output channels x kernel rows, the kernel rows are one product
# (`_conv2d_rows_stacked`).
STACKED_ROWS = 64
# From this many output cells, a 1x1 convolution is one batched product over the probes as they
# lie (`_pointwise_batched`); on fewer, each probe's product is too small (measured: 1.2-2.1x
# faster on 6-12 cells, 0.6x on 4, 0.2x on 1)
POINTWISE_BATCHED_CELLS = 6
# A depthwise convolution by its taps (`_conv2d_depthwise`) is elementwise passes, not products:
# 0.4-0.5 GMAC/s where the same nets' products run at 10-16 (3x3 kernels, 96-144 channels, 16-32
# pixels, stride 2), so a cost model counts each of its multiply-adds this many times (`mac_cost`)
DEPTHWISE_TAP_COST = 32


def pad_spatial(x: torch.Tensor, pads: tuple[int, ...], value: float = 0.0) -> torch.Tensor:
    """ONNX pads (begin..., end...) over the trailing spatial axes, as torch's F.pad wants them
    (negative amounts crop)."""
    n = len(pads) // 2
    torch_pads: list[int] = []
    for i in reversed(range(n)):
        torch_pads += [pads[i], pads[i + n]]
    if not any(torch_pads):
        return x
    return F.pad(x, torch_pads, value=value)


def rows_read(rows: tuple[int, int], kernel: int, stride: int, pad: int, dilation: int) -> tuple[int, int]:
    """The input rows (r0, r1) that the windows of output rows a..b-1 read along one axis, in input
    coordinates: those before 0 or past the input's end are its padding."""
    a, b = rows
    return a * stride - pad, (b - 1) * stride - pad + (kernel - 1) * dilation + 1


def _ours(x: torch.Tensor) -> bool:
    """Where the kernels here pay: float64 on CPU (torch's own are fast elsewhere), more than one probe."""
    return x.dtype == torch.float64 and x.device.type == "cpu" and x.shape[0] > 1


def _sizes(h: int, w: int, kh: int, kw: int, strides, pads, dilations) -> tuple[int, int, int, int]:
    """(padded height, padded width, output height, output width) of a 2-D convolution or pool
    window grid with ONNX pads (top, left, bottom, right)."""
    (sh, sw), (dh, dw) = strides, dilations
    top, left, bottom, right = pads
    hp, wp = h + top + bottom, w + left + right
    return hp, wp, (hp - dh * (kh - 1) - 1) // sh + 1, (wp - dw * (kw - 1) - 1) // sw + 1


def conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, strides, pads, dilations, groups: int,
         cache: dict | None = None) -> torch.Tensor:
    """ONNX Conv of x (N, C, *spatial) with ONNX pads (begin..., end...). `cache`, a dict the
    caller keeps with the weight, holds what depends on the weight alone (a depthwise
    convolution's matrices), built at the first call that needs it."""
    n = weight.dim() - 2
    ours = _ours(x)
    if ours and n == 1:
        # a 1-D convolution is a 2-D one of images one row high: 1.3-2x faster than torch's
        (s,), (d,) = strides, dilations
        y = conv(x.unsqueeze(2), weight.unsqueeze(2), bias, (1, s), (0, pads[0], 0, pads[1]), (1, d), groups)
        return y.squeeze(2)
    few_inputs = n == 2 and _few_inputs(weight)
    pointwise = n == 2 and _pointwise(weight, pads)
    if ours and n == 2 and groups > 1:
        if weight.shape[1] == 1:  # depthwise: one input channel per group
            if _depthwise_dense_pays(x, weight, strides, pads, dilations, cache is not None):
                maps = _kept_depthwise_matrices(cache, weight, x.shape[1:], tuple(strides), tuple(pads), tuple(dilations))
                return _conv2d_depthwise_dense(x, maps, bias)
            return _conv2d_depthwise(x, weight, bias, tuple(strides), tuple(pads), tuple(dilations))
        return _conv2d_grouped(x, weight, bias, strides, pads, dilations, groups)
    if ours and pointwise and (weight.shape[1] >= 4 or not few_inputs):
        return _conv2d_pointwise(x, weight, bias, tuple(strides))
    if ours and n == 2 and not few_inputs:
        if _by_rows(tuple(x.shape[1:]), weight, strides, pads, dilations):
            return _conv2d_rows(x, weight, bias, tuple(strides), tuple(pads), tuple(dilations))
        return _conv2d_unfolded(x, weight, bias, tuple(strides), tuple(pads), tuple(dilations))
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[n]
    if tuple(pads[:n]) == tuple(pads[n:]):  # symmetric: the convolution pads, no padded copy
        return _torch_conv(fn, x, weight, bias, strides, tuple(pads[:n]), dilations, groups)
    return _torch_conv(fn, pad_spatial(x, pads), weight, bias, strides, 0, dilations, groups)


def _few_inputs(weight: torch.Tensor) -> bool:
    """torch's per-probe products write the output once, in place: where the output is much
    larger than the unfolded input (a first layer on 1-3 channels), that beats the copy here
    (measured: 1.1-2.4x with C_out >= 4 kw C_in, slower below)."""
    return weight.shape[0] >= 4 * weight.shape[3] * weight.shape[1]


def _pointwise(weight: torch.Tensor, pads) -> bool:
    """A 1x1 kernel has no unfold to copy: its product beats torch's from 4 input channels on,
    however many outputs (measured: 1.1-4x with 4-192 channels, 2-32 pixels; with 1-3 input
    channels and many outputs, torch's is faster)."""
    return weight.shape[2] == weight.shape[3] == 1 and not any(pads)


def _by_rows(in_shape: tuple[int, ...], weight: torch.Tensor, strides, pads, dilations) -> bool:
    """Whether a convolution of stride 1 along the height runs kernel row by kernel row
    (`_conv2d_rows`): by measurement (3x3 and 5x5 kernels, 3-128 channels, 2-32 pixels), faster
    than the full unfold wherever the kernel rows are one stacked product
    (`_conv2d_rows_stacked`: 1.5-1.7x faster into 16 channels) and, probe by probe, from 16 output
    cells on (1.1-1.5x faster from 8x8 pixels); on fewer cells the products per probe are too
    small (2-3 pixels: 1.4-2x slower)."""
    c_out, kh, kw = weight.shape[0], weight.shape[2], weight.shape[3]
    _, _, oh, ow = _sizes(in_shape[1], in_shape[2], kh, kw, (1, strides[1]), pads, dilations)
    return strides[0] == 1 and (kh * c_out <= STACKED_ROWS or oh * ow >= 16)


def narrow_product(in_shape: tuple[int, ...], weight: torch.Tensor, strides, pads, dilations, groups: int) -> bool:
    """Whether `conv`, in float64 on CPU, runs a 2-D convolution of inputs (C, H, W) as the
    unfolded product of its at most 16 output channels' weights: such a product runs at about
    half the throughput of a wider one (measured: 16 x 128 by 128 x 2016 at 7-17 GMAC/s, where
    square products run at 21-24), so a cost model counts its multiply-adds twice."""
    if weight.dim() != 4 or groups != 1 or weight.shape[0] > 16 or _few_inputs(weight):
        return False
    return not _pointwise(weight, pads) and not _by_rows(tuple(in_shape), weight, strides, pads, dilations)


def mac_cost(in_shape: tuple[int, ...], weight: torch.Tensor, strides, pads, dilations, groups: int) -> float:
    """What one multiply-add of a 2-D convolution of inputs (C, H, W) costs in `conv`, float64 on
    CPU, in multiply-adds of a wide matrix product: 2 for a narrow product (`narrow_product`),
    DEPTHWISE_TAP_COST for a depthwise convolution by its taps, else 1."""
    if narrow_product(in_shape, weight, strides, pads, dilations, groups):
        return 2.0
    depthwise = weight.dim() == 4 and groups > 1 and weight.shape[1] == 1
    shape_only = torch.empty(0, *in_shape, device="meta")  # (the choice reads the input's shape alone)
    if depthwise and not _depthwise_dense_pays(shape_only, weight, strides, pads, dilations, kept=True):
        return float(DEPTHWISE_TAP_COST)
    return 1.0


def _torch_conv(fn, x: torch.Tensor, *args) -> torch.Tensor:
    """torch's convolution `fn`, in true float32 on a GPU: by torch's default, cuDNN computes float32
    convolutions in TF32 (a 10-bit mantissa), 1e-4 relative error, which fails the import check and
    moves knots. The flag is process-wide, so it is set for this call only."""
    cudnn = torch.backends.cudnn
    if x.device.type != "cuda" or x.dtype != torch.float32 or not cudnn.allow_tf32:
        return fn(x, *args)
    cudnn.allow_tf32 = False
    try:
        return fn(x, *args)
    finally:
        cudnn.allow_tf32 = True


def conv2d_of_basis(weight: torch.Tensor, in_shape, start: int, count: int, strides, pads, dilations, groups: int,
                    rows: tuple[int, int] | None = None) -> torch.Tensor:
    """The 2-D convolution without bias of rows start..start+count of the identity, each an input
    (C, H, W) holding a single 1 (an exact distance's first tangents): the weight's taps at that
    cell, written where they land. (count, C_out, OH, OW), the same values as the convolution's
    exactly (each is one product w x 1 plus zeros), without its products: only the output's
    zeros are written in full (measured: 3-4x faster than the product on 3-channel images). With
    `rows` (a, b), output rows a..b-1 alone (count, C_out, b - a, OW), which must hold every tap
    (bands.conv_rows of the cells' rows): the zeros of the others are not written."""
    c_in, h, w = in_shape
    c_out, group_in, kh, kw = weight.shape
    (sh, sw), (dh, dw) = strides, dilations
    top, left, _, _ = pads
    _, _, oh, ow = _sizes(h, w, kh, kw, strides, pads, dilations)
    dev = weight.device
    cell = torch.arange(start, start + count, device=dev)
    c, y, x = cell // (h * w), (cell // w) % h, cell % w
    # output row oy holds the tap ky of input row y where oy * sh = y + top - ky * dh
    ny = y[:, None] + top - torch.arange(kh, device=dev) * dh  # (count, kh)
    nx = x[:, None] + left - torch.arange(kw, device=dev) * dw
    ok_y = (ny >= 0) & (ny % sh == 0) & (ny // sh < oh)
    ok_x = (nx >= 0) & (nx % sw == 0) & (nx // sw < ow)
    t, ky, kx = (ok_y[:, :, None] & ok_x[:, None, :]).nonzero(as_tuple=True)
    oy, ox = ny[t, ky] // sh, nx[t, kx] // sw
    group = c[t] // group_in
    taps = weight[:, c[t] - group * group_in, ky, kx].t()  # (N, C_out)
    in_group = torch.arange(c_out, device=dev) // (c_out // groups) == group[:, None]
    a, b = (0, max(oh, 0)) if rows is None else rows
    out = weight.new_zeros(count, c_out, (b - a) * max(ow, 0))
    out[t, :, (oy - a) * ow + ox] = torch.where(in_group, taps, torch.zeros((), dtype=taps.dtype, device=dev))
    return out.reshape(count, c_out, b - a, max(ow, 0))


def _conv2d_unfolded(x, weight, bias, strides, pads, dilations) -> torch.Tensor:
    n_probes, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    (sh, sw), (dh, dw) = strides, dilations
    _, _, oh, ow = _sizes(h, w, kh, kw, strides, pads, dilations)
    positions, depth = oh * ow, c_in * kh * kw
    out = x.new_empty(n_probes, c_out, positions)
    if positions <= 0:
        return out.reshape(n_probes, c_out, max(oh, 0), max(ow, 0))
    step = max(1, min(n_probes, UNFOLD_CHUNK_BYTES // (depth * positions * x.element_size())))
    w2 = weight.permute(0, 2, 3, 1).reshape(c_out, depth)  # (C_out, kh * kw * C), as the columns
    cols = x.new_empty(step * positions, depth)
    for lo, m, padded in _channels_last_chunks(x, pads, step):
        s = padded.stride()
        windows = padded.as_strided((m, oh, ow, kh, kw, c_in), (s[0], s[1] * sh, s[2] * sw, s[1] * dh, s[2] * dw, 1))
        c = cols[: m * positions]
        c.view(m, oh, ow, kh, kw, c_in).copy_(windows)
        y = torch.mm(w2, c.t()) if bias is None else torch.addmm(bias[:, None], w2, c.t())
        out[lo : lo + m].copy_(y.view(c_out, m, positions).transpose(0, 1))
    return out.reshape(n_probes, c_out, oh, ow)


def _conv2d_pointwise(x, weight, bias, strides) -> torch.Tensor:
    """A 1x1 kernel without padding (a ResNet's shortcut, a MobileNet's expansions and
    projections): no padded copy and no unfold. From POINTWISE_BATCHED_CELLS output cells on,
    the weight times each probe's cells as they lie, a chunk of probes in one batched product
    that writes the output in place (`_pointwise_batched`); on fewer cells such products are too
    small, and a chunk's cells, channels first, are one product instead, copied in and out."""
    n_probes, c_in, h, w = x.shape
    c_out = weight.shape[0]
    sh, sw = strides
    cells = x[:, :, ::sh, ::sw]  # what the windows read
    oh, ow = cells.shape[2], cells.shape[3]
    positions = oh * ow
    if positions >= POINTWISE_BATCHED_CELLS:
        return _pointwise_batched(cells, weight.reshape(c_out, c_in), bias)
    out = x.new_empty(n_probes, c_out, oh, ow)
    step = max(1, min(n_probes, CHUNK_BYTES // (max(c_in, c_out) * positions * x.element_size())))
    cols = x.new_empty(c_in, step * positions)
    w2 = weight.reshape(c_out, c_in)
    y_all = x.new_empty(c_out, step * positions)
    for lo in range(0, n_probes, step):
        m = min(step, n_probes - lo)
        c = cols[:, : m * positions]
        c.view(c_in, m, oh, ow).copy_(cells[lo : lo + m].transpose(0, 1))
        y = y_all[:, : m * positions]
        if bias is None:
            torch.mm(w2, c, out=y)
        else:
            torch.addmm(bias[:, None], w2, c, out=y)
        out[lo : lo + m].copy_(y.view(c_out, m, oh, ow).transpose(0, 1))
    return out


def _pointwise_batched(cells: torch.Tensor, w2: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """`_conv2d_pointwise` of the cells (N, C, oh, ow) the windows read, weight (C_out, C): w2 @
    each probe's (C, oh x ow) cells, a chunk of probes per batched product, written into the
    output where it lies. Its few multiply-adds per output (C) make writing the output the larger
    cost, so the bias is not a second pass over it where the input is the smaller: it comes with
    the product, through a row of ones under a copy of the chunk's cells (a copy that a strided
    shortcut makes anyway); else it is added to each chunk's output while in cache. By
    measurement against the product over channels-first copies: 1.1-2.1x faster on 6 to 32x32
    cells, 4-256 channels, strides 1 and 2."""
    n_probes, c_in, oh, ow = cells.shape
    c_out, positions = w2.shape[0], oh * ow
    ones = bias is not None and c_out > c_in + 1
    copied = ones or not cells.is_contiguous()
    if ones:
        w2 = torch.cat([w2, bias[:, None]], 1)
    out = cells.new_empty(n_probes, c_out, positions)
    depth = c_in + ones
    step = max(1, min(n_probes, CHUNK_BYTES // (max(depth, c_out) * positions * cells.element_size())))
    buffer = cells.new_empty(step, depth, positions) if copied else None
    if ones:
        buffer[:, c_in].fill_(1.0)
    for lo in range(0, n_probes, step):
        m = min(step, n_probes - lo)
        if copied:
            operand = buffer[:m]
            operand[:, :c_in].view(m, c_in, oh, ow).copy_(cells[lo : lo + m])
        else:
            operand = cells[lo : lo + m].reshape(m, c_in, positions)
        o = out[lo : lo + m]
        torch.matmul(w2, operand, out=o)
        if bias is not None and not ones:
            o.add_(bias[:, None])
    return out.view(n_probes, c_out, oh, ow)


def _channels_last_chunks(x: torch.Tensor, pads, step: int):
    """(lo, m, padded) for each chunk of `step` probes from lo: one buffer (step, hp, wp, C),
    reused, that holds the chunk's m probes channels-last inside zero borders (ONNX pads)."""
    n_probes, c_in, h, w = x.shape
    top, left, bottom, right = pads
    padded = x.new_zeros(step, h + top + bottom, w + left + right, c_in)  # borders stay zero
    interior = padded[:, top : top + h, left : left + w]
    for lo in range(0, n_probes, step):
        m = min(step, n_probes - lo)
        interior[:m].copy_(x[lo : lo + m].permute(0, 2, 3, 1))
        yield lo, m, padded


def _conv2d_rows(x, weight, bias, strides, pads, dilations) -> torch.Tensor:
    """Stride 1 along the height: the chunk is unfolded along the width only (a third of the full
    unfold's copy for a 3x3 kernel), and each kernel row is one batched product, probe by probe,
    over the unfolded rows shifted by that many image rows, added into the output where it lies:
    no output copy, and no products over rows whose windows would cross into the next probe (see
    `_by_rows` for where this pays; measured against one product over the whole chunk: 5-25 %
    faster with 32-128 output channels on 8-32 pixels). With few output channels the kernel rows
    are stacked into one product instead (`_conv2d_rows_stacked`)."""
    n_probes, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    (_, sw), (dh, dw) = strides, dilations
    top, left, bottom, right = pads
    hp, wp = h + top + bottom, w + left + right
    oh, ow = hp - dh * (kh - 1), (wp - dw * (kw - 1) - 1) // sw + 1
    if oh <= 0 or ow <= 0:
        return x.new_empty(n_probes, c_out, max(oh, 0), max(ow, 0))
    if kh * c_out <= STACKED_ROWS:
        return _conv2d_rows_stacked(x, weight, bias, sw, pads, dilations)
    out = x.new_empty(n_probes, c_out, oh * ow)
    depth = kw * c_in
    step = max(1, min(n_probes, CHUNK_BYTES // (hp * ow * depth * x.element_size())))
    w4 = weight.permute(2, 0, 3, 1)  # (kh, C_out, kw, C)
    w_rows = [w4[i].reshape(c_out, depth) for i in range(kh)]
    if bias is not None:  # with kernel row 0's products, through the unfold's row of ones
        w_rows[0] = torch.cat([w_rows[0], bias[:, None]], 1)
    for lo, m, c in _width_unfolds(x, step, kw, hp, ow, top, left, sw, dw, bias is not None):
        probes = c.view(c.shape[0], m, hp * ow).transpose(0, 1)  # (m, kw x C (+ 1), hp x ow)
        o = out[lo : lo + m]
        torch.bmm(w_rows[0].expand(m, *w_rows[0].shape), probes[:, :, : oh * ow], out=o)
        for i in range(1, kh):  # kernel row i reads the unfolded rows i x dh image rows down
            o.baddbmm_(w_rows[i].expand(m, *w_rows[i].shape), probes[:, :depth, i * dh * ow : (i * dh + oh) * ow])
    return out.view(n_probes, c_out, oh, ow)


def _width_unfolds(x: torch.Tensor, step: int, kw: int, rows: int, ow: int, top: int, left: int, sw: int, dw: int,
                   ones: bool):
    """(lo, m, cols) for each chunk of `step` probes from lo: the chunk unfolded along the width,
    channels first, as a matrix (kw x C (+ 1), m x rows x ow) whose first kw x C rows are
    (kw, C, m, rows, ow) with [kx, c, n, top + y, ox] = x[lo + n, c, y, ox * sw + kx * dw - left]
    and zeros where that reads the padding (rows above and below the image included); with
    `ones`, a last row of ones, which carries the bias through the product (a 1/(kw C) longer
    product, where adding it costs a pass over the output).

    Channels first, each kernel column is a copy of the chunk shifted along the width in runs of
    image rows, with no channels-last copy before it, and the unfolded rows are the right operand
    of a product as they lie (on one AVX-512 core, 15-20 % faster than its transpose). Where the
    output is as wide as the input at stride 1, the shift is one of whole planes (long runs), the
    cells it wraps into the next row zeroed after. (A full unfold so made, strided, is 10-20 %
    slower than `_conv2d_unfolded`'s at stride 2: its runs are short and strided.) One buffer
    serves every chunk, zeroed where a chunk's size changes its layout: the cells a chunk does not
    write stay zero."""
    n_probes, c_in, h, w = x.shape
    depth = kw * c_in
    buffer = x.new_empty((depth + ones) * step * rows * ow)
    flat = sw == 1 and ow == w
    last = 0
    for lo in range(0, n_probes, step):
        m = min(step, n_probes - lo)
        matrix = buffer[: (depth + ones) * m * rows * ow].view(depth + ones, m * rows * ow)
        if m != last:
            matrix[:depth].zero_()
            matrix[depth:].fill_(1.0)
            last = m
        chunk = x[lo : lo + m].transpose(0, 1)  # (C, m, h, w)
        image = matrix[:depth].view(kw, c_in, m, rows, ow)[:, :, :, top : top + h]
        for kx in range(kw):
            s = kx * dw - left  # output column ox reads input column ox * sw + s
            a, b = min(ow, max(0, -(s // sw))), min(ow, (w - 1 - s) // sw + 1)
            if b <= a:
                continue
            if flat:
                planes, source = image[kx].view(c_in, m, h * w), chunk.reshape(c_in, m, h * w)
                planes[:, :, max(0, -s) : h * w - max(0, s)].copy_(source[:, :, max(0, s) : h * w - max(0, -s)])
                if a > 0:
                    image[kx, :, :, :, :a].zero_()
                if b < ow:
                    image[kx, :, :, :, b:].zero_()
            else:
                image[kx, :, :, :, a:b].copy_(chunk[:, :, :, a * sw + s : (b - 1) * sw + s + 1 : sw])
        yield lo, m, matrix


def _conv2d_rows_stacked(x, weight, bias, sw: int, pads, dilations) -> torch.Tensor:
    """`_conv2d_rows` with kh x C_out <= STACKED_ROWS: one product of every kernel row (stacked)
    with the chunk's unfolded input rows, the zero rows of the padding left out, then each output
    row the sum of the kernel rows' products at the input rows it reads (a padding row adds
    nothing): the widest-reaching kernel row's products with the bias, plus the next widest's in
    the same pass, then the others', widest first. A product with C_out <= 16 rows runs at half
    the matrix product's throughput or less; with kh x C_out rows it runs 5-25 % faster (3x3, 8-16
    channels, 8-32 pixels; 32 channels: the same), and leaving out the padding's rows (a fifth of
    the rows of an 8-pixel image) saves 10-30 % more on images of 4-32 pixels."""
    n_probes, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    dh, dw = dilations
    top, left, bottom, right = pads
    wp = w + left + right
    oh, ow = h + top + bottom - dh * (kh - 1), (wp - dw * (kw - 1) - 1) // sw + 1
    out = x.new_empty(n_probes, c_out, oh, ow)
    depth = kw * c_in
    step = max(1, min(n_probes, CHUNK_BYTES // (h * ow * depth * x.element_size())))
    w_stacked = weight.permute(2, 0, 3, 1).reshape(kh * c_out, depth)  # kernel row i: rows i*C_out..
    # kernel row i adds to output rows [lo_i, hi_i): those whose input row is inside the image
    spans = [(min(oh, max(0, top - i * dh)), max(0, min(oh, h + top - i * dh))) for i in range(kh)]
    base, *rest = sorted(range(kh), key=lambda i: spans[i][0] - spans[i][1])  # the widest first
    (a0, b0), first = spans[base], None
    if rest and a0 <= spans[rest[0]][0] < spans[rest[0]][1] <= b0:
        first = rest.pop(0)  # added to the base's products in one pass
    if bias is not None:  # with the base's products, through the unfold's row of ones
        column = torch.cat([bias.new_zeros(base * c_out), bias, bias.new_zeros((kh - 1 - base) * c_out)])
        w_stacked = torch.cat([w_stacked, column[:, None]], 1)
    y_all = x.new_empty(kh * c_out, step * h * ow)
    row = y_all.stride(0)
    for lo, m, c in _width_unfolds(x, step, kw, h, ow, 0, left, sw, dw, bias is not None):
        y = y_all[:, : c.shape[1]]
        torch.mm(w_stacked, c, out=y)

        def part(i: int, a: int, b: int) -> torch.Tensor:  # kernel row i's products for output rows a..b
            offset = i * c_out * row + (a + i * dh - top) * ow
            return y_all.as_strided((m, c_out, b - a, ow), (h * ow, row, ow, 1), y_all.storage_offset() + offset)

        o = out[lo : lo + m]
        for a, b in ((0, a0), (max(a0, b0), oh)):  # rows the base reads padding for: the bias
            if b > a:
                o[:, :, a:b] = 0.0 if bias is None else bias[:, None, None]
        a1, b1 = spans[first] if first is not None else (b0, b0)
        for a, b in ((a0, a1), (b1, b0)):
            if b > a:
                o[:, :, a:b].copy_(part(base, a, b))
        if b1 > a1:
            torch.add(part(base, a1, b1), part(first, a1, b1), out=o[:, :, a1:b1])
        for i in rest:
            a, b = spans[i]
            if b > a:
                o[:, :, a:b].add_(part(i, a, b))
    return out


def _conv2d_grouped(x, weight, bias, strides, pads, dilations, groups: int) -> torch.Tensor:
    """Each group convolved on its own (by `conv`, so with the products above), side by side."""
    c_in, c_out = x.shape[1] // groups, weight.shape[0] // groups
    parts = []
    for g in range(groups):
        b = None if bias is None else bias[g * c_out : (g + 1) * c_out]
        parts.append(conv(x[:, g * c_in : (g + 1) * c_in], weight[g * c_out : (g + 1) * c_out], b, strides, pads, dilations, 1))
    return torch.cat(parts, dim=1)


def _conv2d_depthwise(x, weight, bias, strides, pads, dilations) -> torch.Tensor:
    """A depthwise convolution (C groups of one input channel, m outputs each) as the sum over
    the kernel's taps of weight x a shifted view of the input, a chunk of probes at a time.

    The chunk's padded input is first split into its stride phases (padded rows y with the same
    y mod stride in one phase, and so for columns; one phase at stride 1), each a contiguous
    (probe, channel, row, column) block. A tap is then one run of that block shifted by the tap's
    offset: a window's cells lie at the same place in every tap of a phase, so each channel's
    output plane, computed over the phase's full width, is one contiguous run of the same length.
    The columns past the output's width (and rows past its height) are computed from cells of
    the next row or plane and dropped. Every pass has long contiguous runs, where the taps of the
    (probe, channel, row, column) layout have runs of one output row: 2-4x faster than torch on
    3x3 kernels."""
    n_probes, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    m = c_out // c_in
    (sh, sw), (dh, dw) = strides, dilations
    top, left, _, _ = pads
    hp, wp, oh, ow = _sizes(h, w, kh, kw, strides, pads, dilations)
    out = x.new_empty(n_probes, c_in, m, max(oh, 0), max(ow, 0))
    if oh <= 0 or ow <= 0:
        return out.reshape(n_probes, c_out, max(oh, 0), max(ow, 0))
    hq, wq = -(-hp // sh), -(-wp // sw)  # a phase's rows and columns
    plane = hq * wq
    step = max(1, min(n_probes, DEPTHWISE_CHUNK_BYTES // (c_in * plane * (sh * sw + 1) * x.element_size())))
    # phase (a, b) of the padded chunk, the zero borders kept across chunks; a plane more at the
    # end, which the last channel's shifted runs read into (for dropped outputs only)
    phases = x.new_zeros(sh, sw, (step * c_in + 1) * plane)
    copies = []  # (phase, first row and column there, input rows and columns it holds)
    for a in range(sh):
        y0 = (a - top) % sh  # the first input row whose padded row is in phase a
        rows = slice(y0, h, sh)
        for b in range(sw):
            x0 = (b - left) % sw
            cols = slice(x0, w, sw)
            if y0 < h and x0 < w:
                copies.append((a, b, (y0 + top) // sh, (x0 + left) // sw, rows, cols))
    taps = []  # (phase, offset in it, weights (C, m)) of each kernel tap
    for ky in range(kh):
        for kx in range(kw):
            a, b = (ky * dh) % sh, (kx * dw) % sw
            offset = ((ky * dh) // sh) * wq + (kx * dw) // sw
            taps.append((a, b, offset, weight[:, 0, ky, kx].reshape(c_in, m)))
    acc = x.new_empty(step, c_in, plane)
    for lo in range(0, n_probes, step):
        n = min(step, n_probes - lo)
        chunk = x[lo : lo + n]
        for a, b, q, r, rows, cols in copies:
            cells = chunk[:, :, rows, cols]
            block = phases[a, b, : n * c_in * plane].view(n, c_in, hq, wq)
            block[:, :, q : q + cells.shape[2], r : r + cells.shape[3]].copy_(cells)
        o = acc[:n]
        for k in range(m):
            for t, (a, b, offset, wt) in enumerate(taps):
                run = phases[a, b, offset : offset + n * c_in * plane].view(n, c_in, plane)
                if t == 0:
                    torch.mul(run, wt[:, k, None], out=o)
                else:
                    o.addcmul_(run, wt[:, k, None])
            if bias is not None:
                o += bias.view(c_in, m)[:, k, None]
            out[lo : lo + n, :, k].copy_(o.view(n, c_in, hq, wq)[:, :, :oh, :ow])
    return out.reshape(n_probes, c_out, oh, ow)


def _depthwise_dense_pays(x, weight, strides, pads, dilations, kept: bool = False) -> bool:
    """Whether a depthwise convolution is cheaper as each channel's dense matrix: on small images,
    where the taps' passes run mostly over padding (a 5x5 kernel on a 2x2 image reads 36 cells per
    tap for 4 outputs). The taps cost a pass per tap over a stride phase's padded cells, plus the
    padded copy; the matrices cost (input cells x output cells) multiply-adds, which a batched
    product runs several times faster than the taps' elementwise passes. By measurement (3x3 and
    5x5 kernels, 2-16 pixels, strides 1 and 2, 96-384 channels), the matrices are faster up to
    DENSE_OVER_TAPS times the taps' count (1.5-8x faster at a tenth of it), slower from about 4x.
    Building the matrices is a convolution of one probe per input cell: unless they are `kept`
    for later calls, more probes than input cells are asked for."""
    _, _, h, w = x.shape
    kh, kw = weight.shape[2], weight.shape[3]
    sh, sw = strides
    hp, wp, oh, ow = _sizes(h, w, kh, kw, strides, pads, dilations)
    if oh <= 0 or ow <= 0:
        return False
    taps = kh * kw * -(-hp // sh) * -(-wp // sw) + hp * wp
    return (kept or h * w < x.shape[0]) and h * w * oh * ow <= DENSE_OVER_TAPS * taps


def _depthwise_matrices(weight, in_shape, strides, pads, dilations) -> torch.Tensor:
    """Each channel's matrix (C, input cells, m x oh x ow) of a depthwise convolution: the
    convolution of the basis images (one input cell 1 in every channel), each entry one weight
    times 1, so the weights exactly."""
    c_in, h, w = in_shape
    cells = h * w
    basis = torch.eye(cells, dtype=weight.dtype, device=weight.device).view(cells, 1, h, w).expand(cells, c_in, h, w)
    maps = _conv2d_depthwise(basis, weight, None, strides, pads, dilations)  # (cells, C_out, oh, ow)
    return maps.reshape(cells, c_in, -1, *maps.shape[2:]).permute(1, 0, 2, 3, 4).contiguous()


def _kept_depthwise_matrices(cache: dict | None, weight, in_shape, strides, pads, dilations) -> torch.Tensor:
    """`_depthwise_matrices`, from `cache` where they were built for this very weight (a weight
    put in its place, as re-initialisation does, gets its own) and padding, else built and kept
    there. An exact distance's bands of rows each have an image height and pads of their own
    (analysis/bands.py): the cache keeps the KEPT_DEPTHWISE last built, dropping the oldest."""
    key = ("depthwise matrices", *in_shape[1:], strides, pads, dilations)
    kept_weight, maps = (cache or {}).get(key, (None, None))
    if kept_weight is not weight:
        maps = _depthwise_matrices(weight, in_shape, strides, pads, dilations)
        if cache is not None:
            kept = [k for k in cache if k[0] == "depthwise matrices" and k != key]
            for old in kept[: max(0, len(kept) - KEPT_DEPTHWISE + 1)]:
                del cache[old]
            cache[key] = (weight, maps)
    return maps


def _conv2d_depthwise_dense(x, maps, bias) -> torch.Tensor:
    """A depthwise convolution as one matrix per channel (`_depthwise_matrices`), a block of
    channels and probes at a time in one batched product. A block (channel, probe, cell) is copied
    out of the input's (probe, channel, cell) order, multiplied, and copied back: sized to stay in
    cache, with enough probes per product (DENSE_BLOCK_*); a product of the whole input's strided
    view is 1.3-4x slower."""
    n_probes, c_in = x.shape[:2]
    _, cells, mult, oh, ow = maps.shape
    outs = mult * oh * ow
    maps = maps.view(c_in, cells, outs)
    if bias is not None:  # (C, 1, m x oh x ow): added by each block's product
        bias = bias.view(c_in, mult, 1).expand(c_in, mult, oh * ow).reshape(c_in, 1, outs)
    x3 = x.reshape(n_probes, c_in, cells)
    out = x.new_empty(n_probes, c_in, outs)
    rows = min(n_probes, DENSE_BLOCK_PROBES)
    block = max(1, min(c_in, DENSE_BLOCK_BYTES // (rows * max(cells, outs) * x.element_size())))
    x_block, y_block = x.new_empty(block, rows, cells), x.new_empty(block, rows, outs)
    for lo in range(0, n_probes, rows):
        m = min(rows, n_probes - lo)
        for c0 in range(0, c_in, block):
            cb = min(block, c_in - c0)
            xb, yb = x_block[:cb, :m], y_block[:cb, :m]
            xb.copy_(x3[lo : lo + m, c0 : c0 + cb].transpose(0, 1))
            if bias is None:
                torch.bmm(xb, maps[c0 : c0 + cb], out=yb)
            else:
                torch.baddbmm(bias[c0 : c0 + cb], xb, maps[c0 : c0 + cb], out=yb)
            out[lo : lo + m, c0 : c0 + cb].copy_(yb.transpose(0, 1))
    return out.reshape(n_probes, c_in * mult, oh, ow)


def conv_transpose(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, strides, pads, output_padding,
                   dilations, groups: int, cache: dict | None = None) -> torch.Tensor:
    """ONNX ConvTranspose of x (N, C, *spatial): the full transposed convolution, ONNX's pads
    cropped and its output_padding appended (cells that only the bias reaches). `cache`, a dict
    the caller keeps with the weight, holds the phases' kernels (`_kept_phase_kernels`)."""
    n = weight.dim() - 2
    if _ours(x) and n == 2 and tuple(dilations) == (1, 1):
        # a grouped one group by group, as `_conv2d_grouped` does (measured against torch's: as
        # fast with 2 groups of 2 channels, 1.2x faster with 2 of 16, 2.4x with 4 of 4 at 4x4)
        c_in, c_out = weight.shape[0] // groups, weight.shape[1]
        parts = [
            _conv_transpose2d_phases(x[:, g * c_in : (g + 1) * c_in],
                                     _kept_phase_kernels(cache, weight, g, groups, tuple(strides)),
                                     None if bias is None else bias[g * c_out : (g + 1) * c_out],
                                     tuple(strides), tuple(pads), tuple(output_padding), weight.shape[2:])
            for g in range(groups)
        ]
        return parts[0] if groups == 1 else torch.cat(parts, dim=1)
    fn = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[n]
    y = _torch_conv(fn, x, weight, None, strides, 0, 0, groups, dilations)
    crop = tuple(-p for p in pads[:n]) + tuple(o - p for o, p in zip(output_padding, pads[n:]))
    y = pad_spatial(y, crop)
    return y if bias is None else y + bias.reshape(-1, *([1] * n))


def _kept_phase_kernels(cache: dict | None, weight: torch.Tensor, g: int, groups: int, strides) -> tuple:
    """`_phase_kernels` of group g, from `cache` where they were made for this very weight (a
    weight put in its place, as re-initialisation does, gets its own), else made and kept there:
    a flip and copy of the whole weight at every call cost an eighth of a small generator's
    boundary distances (measured: 8.7 ms against 7.7 ms on the benchmark's dcgan-generator)."""
    key = ("phase kernels", g, *strides)
    kept_weight, kernels = (cache or {}).get(key, (None, None))
    if kept_weight is not weight:
        c_in = weight.shape[0] // groups
        kernels = _phase_kernels(weight[g * c_in : (g + 1) * c_in], strides)
        if cache is not None:
            cache[key] = (weight, kernels)
    return kernels


def _phase_kernels(weight: torch.Tensor, strides) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """Each stride phase's kernel rows and columns, flipped, as an ordinary convolution's weight
    (C_out, C_in, mh, mw); and, where the stride divides the kernel, all of them side by side as
    one convolution's output channels (else None). See `_conv_transpose2d_phases`."""
    (sh, sw), (kh, kw) = strides, weight.shape[2:]
    kernels = [weight[:, :, a::sh, b::sw].flip(2, 3).transpose(0, 1).contiguous() for a in range(sh) for b in range(sw)]
    return kernels, (torch.cat(kernels) if kh % sh == 0 and kw % sw == 0 else None)


def _conv_transpose2d_phases(x, phase_kernels, bias, strides, pads, output_padding, kernel) -> torch.Tensor:
    """A 2-D transposed convolution as ordinary convolutions of its stride phases (`phase_kernels`,
    `_phase_kernels` of the weight, whose kernel is `kernel` (kh, kw)).

    Output row Y reads input rows y and kernel rows ky with Y + top = y * s + ky: the rows of one
    phase a = (Y + top) mod s read only the kernel rows a, a + s, ... . Phase a's rows, at
    q = (Y + top - a) / s, are sum_m x[q - m] W[a + s m]: a convolution of x with those kernel rows
    flipped, padded by their count - 1 on both sides; and so for columns. Where the stride divides
    the kernel, all phases have kernels of one size and are one convolution (`conv`) with the
    phases' output channels side by side: for a 2x2 kernel at stride 2, one product. Each phase
    is then written into its cells of the output. Cells past the full transposed convolution
    (output_padding) hold the bias."""
    kernels, joined = phase_kernels
    n_probes, c_in, h, w = x.shape
    c_out, (kh, kw) = kernels[0].shape[0], kernel
    (sh, sw), (top, left, bottom, right) = strides, pads
    oh = (h - 1) * sh + kh - top - bottom + output_padding[0]
    ow = (w - 1) * sw + kw - left - right + output_padding[1]
    y = x.new_empty(n_probes, c_out, oh, ow)
    phases = [(a, b) for a in range(sh) for b in range(sw)]
    if joined is not None:  # one convolution of every phase
        mh, mw = kh // sh, kw // sw
        b_all = None if bias is None else bias.repeat(len(phases))
        z_all = conv(x, joined, b_all, (1, 1), (mh - 1, mw - 1, mh - 1, mw - 1), (1, 1), 1)
        outputs = [z_all[:, p * c_out : (p + 1) * c_out] for p in range(len(phases))]
    else:
        outputs = [None] * len(phases)
    covered, writes = True, []
    for p, (a, b) in enumerate(phases):
        cells = y[:, :, (a - top) % sh :: sh, (b - left) % sw :: sw]
        q0, p0 = ((a - top) % sh + top - a) // sh, ((b - left) % sw + left - b) // sw
        mh, mw = kernels[p].shape[2:]
        rows = max(0, min(cells.shape[2], h + mh - 1 - q0)) if mh else 0
        cols = max(0, min(cells.shape[3], w + mw - 1 - p0)) if mw else 0
        covered &= (rows, cols) == tuple(cells.shape[2:])
        if rows and cols:
            writes.append((p, cells, q0, p0, rows, cols))
    if not covered:  # cells past the full convolution, or phases no kernel row reads: the bias
        y.zero_() if bias is None else y.copy_(bias.reshape(1, -1, 1, 1))
    for p, cells, q0, p0, rows, cols in writes:
        z = outputs[p]
        if z is None:
            mh, mw = kernels[p].shape[2] - 1, kernels[p].shape[3] - 1
            z = conv(x, kernels[p], bias, (1, 1), (mh, mw, mh, mw), (1, 1), 1)
        cells[:, :, :rows, :cols].copy_(z[:, :, q0 : q0 + rows, p0 : p0 + cols])
    return y
