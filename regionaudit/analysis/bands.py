"""The image rows where an exact distance's tangents can be nonzero, and the layers run on them.

An exact distance pushes rows of the identity through the network, a chunk of consecutive input
cells at a time: a few rows of one channel of the image. Each tangent is then zero outside a band
of image rows, which a convolution or a pooling widens by its kernel's reach (and shrinks by its
stride): through the first layers of a 64x64 image net the band is a few rows of 64. The
convolutions, the ReLUs' slopes, the residual sums and the max pools' windows run on the band's
rows alone, the values they compute being those of the full layer (a padding row or a zero row
adds nothing to a sum), and a tangent holds those rows only: its zeros are written out only for a
layer that reads every row. A band is (lo, hi): rows lo..hi-1 of the tangent's height axis (the
next-to-last of (T, P, C, H, W)); None where it is unknown (the tangent may be nonzero anywhere:
after a flatten, or with Gaussian directions).
"""

from __future__ import annotations

import math

import torch

from regionaudit.conv import conv_transpose, rows_read
from regionaudit.ir import Clip, Concat, Conv, ConvTranspose, LeakyRelu, MaxPool, Node, Pad, Resample, Reshape, Scale, Sum, Transpose

Band = tuple[int, int] | None


def is_image(shape: tuple[int, ...]) -> bool:
    """Whether a tensor of this shape (probe axis left out) is one image (C, H, W), after leading
    axes of length 1 (an exported batch axis)."""
    return len(shape) >= 3 and math.prod(shape[:-3]) == 1


def of_basis(image: tuple[int, ...], start: int, count: int) -> Band:
    """The rows of an image (C, H, W) that identity rows start..start+count hold their 1 in."""
    if not is_image(image):
        return None
    _, h, w = image[-3:]
    first, last = start, start + count - 1
    if first // (h * w) != last // (h * w):  # the chunk runs into the next channel
        return (0, h)
    return (first // w) % h, (last // w) % h + 1


def reached(band: Band, kernel: int, stride: int, pad_top: int, dilation: int, out_height: int) -> Band:
    """The output rows of a convolution or pooling window grid whose windows read a row of band:
    row oy reads rows oy * stride - pad_top + k * dilation, k < kernel."""
    if band is None:
        return None
    lo, hi = band
    a = max(0, -(-(lo + pad_top - (kernel - 1) * dilation) // stride))
    b = min(out_height, (hi - 1 + pad_top) // stride + 1)
    return (a, max(a, b))


def full(band: Band, height: int) -> bool:
    """Whether the band covers every row (or is unknown): nothing to leave out."""
    return band is None or (band[0] <= 0 and band[1] >= height)


def layer_rows(node: Node, band: Band) -> Band:
    """The output rows of a convolution, transposed convolution or resize whose input is zero
    outside band; None for other nodes, or where the layer does not run on bands."""
    if isinstance(node, Conv):
        return conv_rows(node, band)
    if isinstance(node, ConvTranspose):
        return conv_transpose_rows(node, band)
    if isinstance(node, Resample):
        return resample_rows(node, band)
    return None


def on_band(node: Node, dz: torch.Tensor, held: tuple[int, int],
            band: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """The layer's linear part of tangents dz (N, *shape, rows held = (lo, hi) of its input's
    height), zero outside band, for its output rows (a, b) = `layer_rows` alone (the caller
    checks they are not None): (N, *output shape with b - a rows), (a, b)."""
    if isinstance(node, Resample):
        return resample_band(node, dz, held, band)
    x = dz.reshape(math.prod(dz.shape[:-3]), *dz.shape[-3:])  # (not -1: a band may hold no rows)
    y, rows = (conv_band if isinstance(node, Conv) else conv_transpose_band)(node, x, held, band)
    return y.reshape(*dz.shape[:-3], *y.shape[-3:]), rows


def conv_rows(node: Conv, band: Band) -> Band:
    """The output rows of a 2-D convolution that read a row of band."""
    if band is None or node.weight.dim() != 4 or min(node.pads) < 0:
        return None
    return reached(band, node.weight.shape[2], node.strides[0], node.pads[0], node.dilations[0], node.shape[-2])


def conv_band(node: Conv, dz: torch.Tensor, held: tuple[int, int], band: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """The convolution's linear part of tangents dz (N, C, hi - lo, W), rows held = (lo, hi) of
    its input, which is zero outside `band`, for the output rows (a, b) the band reaches only:
    (N, C_out, b - a, OW), from the input rows they read, rows that dz does not hold taken as
    padding (zero too). The caller checks `conv_rows` is not None."""
    lo, hi = held
    a, b = conv_rows(node, band)
    top, left, _, right = node.pads
    r0, r1 = rows_read((a, b), node.weight.shape[2], node.strides[0], top, node.dilations[0])
    s0, s1 = max(r0, lo), min(r1, hi)  # those dz holds
    if b <= a or s1 <= s0:
        return dz.new_zeros(dz.shape[0], node.shape[-3], b - a, node.shape[-1]), (a, b)
    x = dz[:, :, s0 - lo : s1 - lo]
    y = node.linear_padded(x, (s0 - r0, left, r1 - s1, right))
    return y, (a, b)


def conv_transpose_rows(node: ConvTranspose, band: Band) -> Band:
    """The output rows of a 2-D transposed convolution that a row of band reaches: input row y
    adds to output rows y * stride - top + ky * dilation, ky < kernel (its output padding only
    the bias reaches)."""
    if band is None or node.weight.dim() != 4:
        return None
    if band[1] <= band[0]:
        return (0, 0)
    (lo, hi), s, d, top = band, node.strides[0], node.dilations[0], node.pads[0]
    a = max(0, lo * s - top)
    b = min(node.shape[-2], (hi - 1) * s - top + (node.weight.shape[2] - 1) * d + 1)
    return (a, max(a, b))


def conv_transpose_band(node: ConvTranspose, dz: torch.Tensor, held: tuple[int, int],
                        band: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """The transposed convolution's linear part of tangents dz (N, C, hi - lo, W), rows held =
    (lo, hi) of its input, zero outside band: the band's rows transposed-convolved with no
    padding along the height (full output row band[0] * stride onwards), then the rows a..b of
    `conv_transpose_rows`."""
    a, b = conv_transpose_rows(node, band)
    if b <= a:  # (an empty band: a layer before reached no row)
        return dz.new_zeros(dz.shape[0], node.shape[-3], 0, node.shape[-1]), (a, a)
    x = dz[:, :, band[0] - held[0] : band[1] - held[0]]
    _, left, _, right = node.pads
    y = conv_transpose(x, node.weight, None, node.strides, (0, left, 0, right), (0, node.output_padding[1]),
                       node.dilations, node.groups, cache=node._derived)
    first = band[0] * node.strides[0] - node.pads[0]  # the output row of y's first
    return y[:, :, a - first : b - first], (a, b)


def resample_rows(node: Resample, band: Band) -> Band:
    """The output rows of a Resize whose map along the height reads a row of band: the band
    itself where the height is not resized."""
    height = len(node.shape) - 2
    if band is None or height < 0:
        return None
    if height not in node.axes:
        return band
    m = node.matrices[node.axes.index(height)]  # (out, in)
    hit = m[:, band[0] : band[1]].ne(0).any(1).nonzero().flatten().tolist()
    return (hit[0], hit[-1] + 1) if hit else (0, 0)


def resample_band(node: Resample, dz: torch.Tensor, held: tuple[int, int],
                  band: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """The Resize of tangents dz (N, *shape), rows held = (lo, hi) of its input, which is zero
    outside `band`, for the output rows (a, b) the band reaches only: its map along the height
    from the band's rows to rows a..b (the other input rows are zero), along the other axes the
    whole map. The caller checks `resample_rows` is not None."""
    a, b = resample_rows(node, band)
    height = len(node.shape) - 2
    if b <= a:  # (an empty band: a layer before reached no row)
        return dz.new_zeros(dz.shape[0], *node.shape[:-2], 0, node.shape[-1]), (a, a)
    y = dz[..., band[0] - held[0] : band[1] - held[0], :]
    for axis, m in zip(node.axes, node.matrices):
        if axis == height:
            m = m[a:b, band[0] : band[1]]
        y = torch.movedim(torch.movedim(y, axis + 1, -1) @ m.T, -1, axis + 1)
    return y, (a, b)


def crop(x: torch.Tensor, band: Band) -> torch.Tensor:
    """Rows band of x (..., H, W), a view; x itself where there is no band."""
    return x if band is None else x[..., band[0] : band[1], :]


def held(x: torch.Tensor, band: Band, height: int) -> tuple[int, int]:
    """The rows a tangent x of an image `height` rows high holds: every row, or its band's."""
    return (0, height) if band is None or x.shape[-2] == height else band


def rows_of(x: torch.Tensor, rows: tuple[int, int], into: tuple[int, int]) -> torch.Tensor:
    """x (..., hi - lo, W), rows = (lo, hi) of a tensor zero outside them, as its rows `into`:
    a view where x holds them all, else among zeros."""
    if rows[0] <= into[0] and into[1] <= rows[1]:
        return x[..., into[0] - rows[0] : into[1] - rows[0], :]
    out = x.new_empty(*x.shape[:-2], into[1] - into[0], x.shape[-1])
    a = min(max(rows[0], into[0]), into[1])
    b = max(a, min(rows[1], into[1]))
    # (each row written once: zeros only outside the rows held)
    out[..., : a - into[0], :] = 0
    out[..., a - into[0] : b - into[0], :] = x[..., a - rows[0] : b - rows[0], :]
    out[..., b - into[0] :, :] = 0
    return out


def pool_rows(node: MaxPool, band: Band) -> Band:
    """The window rows of a 2-D max pool that read a row of band."""
    if band is None or len(node.kernel) != 2:
        return None
    return reached(band, node.kernel[0], node.strides[0], node.pads[0], node.dilations[0], node.shape[-2])


def pool_input_rows(node: MaxPool, rows: tuple[int, int], height: int) -> tuple[int, int]:
    """The input rows (first, end), not padding, that a 2-D max pool's windows of output rows
    `rows` read, of an input `height` rows high."""
    r0, r1 = rows_read(rows, node.kernel[0], node.strides[0], node.pads[0], node.dilations[0])
    first = min(max(r0, 0), height)
    return first, max(first, min(r1, height))


def window_rows(x: torch.Tensor, shape: tuple[int, ...], rows: tuple[int, int]) -> torch.Tensor:
    """The entries of x (P, W, ...) for the windows of output rows a..b-1 of a 2-D pool of output
    `shape` (windows in output order): a view (P, C, b-a, OW, ...), which writes go through."""
    return x.view(x.shape[0], -1, *shape[-2:], *x.shape[2:])[:, :, rows[0] : rows[1]]


def keeps_band(node: Node, shapes_in: list[tuple[int, ...]]) -> bool:
    """Whether the node maps tangents zero outside some rows to one zero outside those rows (a Sum
    or a Concat: their union) and runs on those rows alone (`on_rows`): an elementwise Scale or
    Sum whose inputs have its shape (a term broadcast along the height would spread over every
    row), and a Pad that pads no row, a Concat not along the last two axes, a Reshape or a
    Transpose that leave them as they are (ShuffleNet's channel split and shuffle)."""
    shape = tuple(node.shape)
    if isinstance(node, (Scale, Sum)):
        return all(tuple(s) == shape for s in shapes_in)
    if len(shape) < 2 or any(tuple(s[-2:]) != shape[-2:] for s in shapes_in):
        return False
    n = len(shape)
    if isinstance(node, Pad):
        return len(node.pads) == 2 * n and node.pads[n - 2] == 0 and node.pads[2 * n - 2] == 0
    if isinstance(node, Concat):
        return node.axis < n - 2
    if isinstance(node, Transpose):
        return tuple(node.perm[-2:]) == (n - 2, n - 1)
    return isinstance(node, Reshape)


def on_rows(node: Node, xs: list[torch.Tensor]) -> torch.Tensor | None:
    """The linear part of a node that keeps the band (`keeps_band`, not a Sum) of tangents
    (N, ..., rows, W) that hold the same rows: the values of those rows of the full layer. None
    for a Scale whose factors vary along the height."""
    if isinstance(node, Scale):
        return scale_rows(node, xs[0])
    if isinstance(node, Reshape):
        return xs[0].reshape(xs[0].shape[0], *node.shape[:-2], xs[0].shape[-2], node.shape[-1])
    if isinstance(node, Pad) and max(node.pads) <= 0:  # a crop (a channel split): a view, no copy
        n = len(node.pads) // 2
        x = xs[0]
        for axis in range(n):
            x = x.narrow(axis + 1, -node.pads[axis], x.shape[axis + 1] + node.pads[axis] + node.pads[axis + n])
        return x
    return node.linear(xs)  # a Pad, Concat or Transpose reads no height of its own


def scale_rows(node: Scale, x: torch.Tensor) -> torch.Tensor | None:
    """A Scale's linear part of x, some rows of its input (of the Scale's own shape: `keeps_band`),
    where its factors do not vary along the height (BatchNorm's are per channel); else None."""
    if node.mul is None:
        return x
    if node.mul.dim() < 2 or node.mul.shape[-2] == 1:
        return x * node.mul
    return None


def slopes_rowwise(node: LeakyRelu | Clip) -> bool:
    """Whether a ReLU's or a Clip's slopes can be taken on a band of rows alone: a ReLU's slope
    tensor does not vary along the height (a scalar, or per channel), a Clip's bounds are one
    number each (ReLU6, Hardtanh)."""
    if isinstance(node, Clip):
        return node.bounds() is not None
    s = node.slope
    return s.dim() < 2 or s.shape[-2] == 1
