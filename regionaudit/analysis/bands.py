"""The image rows where an exact distance's tangents can be nonzero, and the layers run on them.

An exact distance pushes rows of the identity through the network, a chunk of consecutive input
cells at a time: a few rows of one channel of the image. Each tangent is then zero outside a band
of image rows, which a convolution or a pooling widens by its kernel's reach (and shrinks by its
stride): through the first layers of a 64x64 image net the band is a few rows of 64. The
convolutions, the ReLUs' slopes and the max pools' windows here run on the band's rows alone and
leave the rest of the full-size tangent zero, the values they compute being those of the full
layer (a padding row or a zero row adds nothing to a sum). A band is (lo, hi): rows lo..hi-1 of
the tangent's height axis (the next-to-last of (T, P, C, H, W)); None where it is unknown (the
tangent may be nonzero anywhere: after a flatten, or with Gaussian directions).
"""

from __future__ import annotations

import math

import torch

from regionaudit.conv import conv
from regionaudit.ir import Clip, Conv, LeakyRelu, MaxPool, Node, Scale, Sum

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


def conv_rows(node: Conv, band: Band) -> Band:
    """The output rows of a 2-D convolution that read a row of band."""
    if band is None or node.weight.dim() != 4 or min(node.pads) < 0:
        return None
    return reached(band, node.weight.shape[2], node.strides[0], node.pads[0], node.dilations[0], node.shape[-2])


def conv_band(node: Conv, dz: torch.Tensor, band: Band) -> tuple[torch.Tensor, Band]:
    """The convolution's linear part of tangents dz (N, C, H, W), zero outside `band`, computed
    for the output rows the band reaches only (from the input rows they read, with the padding
    where they run past the image); the rest of the output (N, C_out, OH, OW) is zero."""
    rows, h = conv_rows(node, band), dz.shape[-2]
    if rows is None or full(band, h):
        return node.linear([dz]), rows
    kh, (sh, _), (dh, _) = node.weight.shape[2], node.strides, node.dilations
    top, left, _, right = node.pads
    a, b = rows
    out = dz.new_zeros(dz.shape[0], *node.shape[-3:])
    if b > a:
        r0, r1 = a * sh - top, (b - 1) * sh - top + (kh - 1) * dh + 1  # the input rows they read
        x = dz[:, :, max(0, r0) : min(h, r1)]
        pads = (max(0, -r0), left, max(0, r1 - h), right)
        out[:, :, a:b] = conv(x, node.weight, None, node.strides, pads, node.dilations, node.groups)
    return out, rows


def pool_rows(node: MaxPool, band: Band) -> Band:
    """The window rows of a 2-D max pool that read a row of band."""
    if band is None or len(node.kernel) != 2:
        return None
    return reached(band, node.kernel[0], node.strides[0], node.pads[0], node.dilations[0], node.shape[-2])


def window_rows(x: torch.Tensor, shape: tuple[int, ...], rows: tuple[int, int]) -> torch.Tensor:
    """The entries of x (P, W, ...) for the windows of output rows a..b-1 of a 2-D pool of output
    `shape` (windows in output order): a view (P, C, b-a, OW, ...), which writes go through."""
    return x.view(x.shape[0], -1, *shape[-2:], *x.shape[2:])[:, :, rows[0] : rows[1]]


def keeps_band(node: Node, shapes_in: list[tuple[int, ...]]) -> bool:
    """Whether the node's linear part maps tangents zero outside some rows to one zero outside
    those rows (a Sum: their union): an elementwise Scale or Sum whose inputs have its shape (a
    term broadcast along the height would spread over every row)."""
    return isinstance(node, (Scale, Sum)) and all(tuple(s) == tuple(node.shape) for s in shapes_in)


def slopes_rowwise(node: LeakyRelu | Clip) -> bool:
    """Whether a ReLU's or a Clip's slopes can be taken on a band of rows alone: a ReLU's slope
    tensor does not vary along the height (a scalar, or per channel), a Clip's bounds are one
    number each (ReLU6, Hardtanh)."""
    if isinstance(node, Clip):
        return node.bounds() is not None
    s = node.slope
    return s.dim() < 2 or s.shape[-2] == 1
