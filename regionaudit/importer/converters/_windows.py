"""Window geometry shared by Conv and the pools: pads and output sizes for every auto_pad mode,
and the pools' kernel_shape.

Output sizes follow onnxruntime: floor (or ceil with ceil_mode) of the ONNX formula, and with
ceil_mode a last window that would start inside the end padding is dropped.
"""

import math

from regionaudit.importer.registry import Unsupported, attr


def geometry(node, spatial: tuple[int, ...], kernel: tuple[int, ...], ceil_mode: bool = False,
             same_uses_dilation: bool = True):
    """(strides, dilations, pads, out_spatial) for a window op over `spatial`."""
    n = len(kernel)
    strides = tuple(attr(node, "strides", [1] * n))
    dilations = tuple(attr(node, "dilations", [1] * n))
    if len(strides) != n or len(dilations) != n or min(strides + dilations, default=1) < 1:
        raise Unsupported(f"strides {strides} / dilations {dilations} do not fit kernel {kernel}")
    auto = attr(node, "auto_pad", "NOTSET")
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilations)]
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        head, tail = [], []
        for i, s, k, span in zip(spatial, strides, kernel, spans):
            target = -(-i // s)
            total = max(0, (target - 1) * s + (span if same_uses_dilation else k) - i)
            small, big = total // 2, total - total // 2
            head.append(small if auto == "SAME_UPPER" else big)
            tail.append(big if auto == "SAME_UPPER" else small)
        pads = tuple(head + tail)
    elif auto == "VALID":
        pads = (0,) * (2 * n)
    elif auto == "NOTSET":
        pads = tuple(attr(node, "pads", [0] * (2 * n)))
        if len(pads) != 2 * n:
            raise Unsupported(f"pads {pads} do not fit a {n}-d window")
    else:
        raise Unsupported(f"unknown auto_pad {auto!r}")
    out = []
    for j, (i, s, span) in enumerate(zip(spatial, strides, spans)):
        room = i + pads[j] + pads[j + n] - span
        if room < 0:
            raise Unsupported(f"window {span} is larger than the padded input {i + pads[j] + pads[j + n]}")
        o = (math.ceil(room / s) if ceil_mode else room // s) + 1
        if ceil_mode and (o - 1) * s >= i + pads[j]:
            o -= 1
        out.append(o)
    return strides, dilations, pads, tuple(out)


def pool_kernel(node, x):
    """The pool's kernel_shape, which must give one size per spatial axis of x."""
    kernel = tuple(attr(node, "kernel_shape", ()))
    if not kernel or len(x.shape) != len(kernel) + 2:
        raise Unsupported(f"kernel_shape {kernel} does not fit input {x.shape}")
    return kernel


def pool_pads(pads: tuple[int, ...], kernel: tuple[int, ...]) -> None:
    """A pool's pads must each be smaller than its kernel, as onnxruntime requires (onnx's
    evaluator, the check's fallback, pads any amount): a window could lie in the padding alone."""
    n = len(kernel)
    if any(pads[i] >= kernel[i] or pads[i + n] >= kernel[i] for i in range(n)):
        raise Unsupported(f"pads {pads} reach a whole kernel {kernel}: each must be smaller")
