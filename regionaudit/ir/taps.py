"""Windows read tap by tap: one strided view holds one tap of every window along an axis, so a
pool reads its input once per tap and never copies every window (max pools and average pools)."""

from __future__ import annotations

import torch

from regionaudit.conv import pad_spatial


def pad_windows(x, pads, kernel, strides, dilations, out_spatial, value: float) -> torch.Tensor:
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


def tap_view(t: torch.Tensor, dim: int, start: int, stride: int, count: int) -> torch.Tensor:
    """The view t[..., start : start + stride * count : stride, ...] along `dim`: one kernel tap of
    every window along that axis."""
    return t.narrow(dim, start, (count - 1) * stride + 1)[(slice(None),) * dim + (slice(None, None, stride),)]


def tap_spans(length, k, stride, dilation, out_len, pad) -> list[tuple[int, int]]:
    """For each tap o of a window axis, the outputs (first, last + 1) whose tap o is a cell of the
    input (not padding): output i reads cell i * stride + o * dilation - pad."""
    spans = []
    for o in range(k):
        first = max(0, -(-(pad - o * dilation) // stride))
        last = min(out_len, (length - 1 + pad - o * dilation) // stride + 1)
        spans.append((first, max(first, last)))
    return spans


def window_step(y, code, dim, k, stride, dilation, out_len, inner, winners, total, pad=0):
    """One axis of a window maximum: y (..., length, ...) -> (..., out_len, ...) along `dim`, the
    max over the k taps of each window, `pad` cells of padding before y. With `winners`, `code`
    (the previous axes' first-maximum index, None before the first axis) becomes the index over
    this axis and the previous ones: tap * inner + code at the tap that wins (strictly greater:
    the first maximum stays)."""
    spans = tap_spans(y.shape[dim], k, stride, dilation, out_len, pad)
    if any(span != (0, out_len) for span in spans):
        return window_step_padded(y, code, dim, k, stride, dilation, out_len, inner, winners, total, pad, spans)

    def tap(t: torch.Tensor, o: int) -> torch.Tensor:
        return tap_view(t, dim, o * dilation, stride, out_len)

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


def window_step_padded(y, code, dim, k, stride, dilation, out_len, inner, winners, total, pad, spans):
    """`window_step` where some taps read padding at some outputs, without a padded copy of y:
    it starts from a tap `c` that every output reads inside y, and each other tap updates only the
    outputs whose cell it reads (padding is -inf: never a maximum). Ties go to the first tap as
    in `window_step`: the taps before c run from c - 1 down with >=, those after it up with >."""
    c = next(o for o, span in enumerate(spans) if span == (0, out_len))  # `_max` checks there is one

    def tap(t: torch.Tensor, o: int, lo: int = 0, hi: int = out_len) -> torch.Tensor:
        return tap_view(t, dim, lo * stride + o * dilation - pad, stride, hi - lo)

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
            # mine + win * (tap's code - mine), as in `window_step` (uint8 wraps, the sum is exact)
            take = torch.rsub(mine, o * inner) if code is None else tap(code, o, lo, hi) - mine
            if code is not None:
                take.add_(o * inner)
            mine.add_(take.mul_(win.view(torch.uint8) if dtype == torch.uint8 else win.to(dtype)))
        torch.maximum(seg, cand, out=seg)
    return best, new
