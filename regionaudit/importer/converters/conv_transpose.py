"""ConvTranspose (1-D/2-D/3-D) becomes `ir.ConvTranspose`."""

from regionaudit import ir
from regionaudit.importer.registry import Unsupported, attr, converter


@converter("ConvTranspose")
def conv_transpose(node, ctx):
    """Groups, strides, dilations, pads, output_padding; `output_shape` or auto_pad give the pads
    as the ONNX spec computes them (SAME_UPPER puts the odd one at the end; SAME_LOWER, and
    `output_shape` without auto_pad, at the start)."""
    x = ctx.data(0)
    w, b = ctx.const(1, "weight"), ctx.const(2, "bias")
    groups = attr(node, "group", 1)
    kernel = tuple(w.shape[2:])
    n = len(kernel)
    if len(x.shape) != w.ndim or not 1 <= n <= 3 or x.shape[-n - 1] != w.shape[0] or w.shape[0] % groups:
        raise Unsupported(f"input {x.shape} does not fit weight {w.shape} with group {groups}")
    if tuple(attr(node, "kernel_shape", kernel)) != kernel:
        raise Unsupported(f"kernel_shape {attr(node, 'kernel_shape')} differs from the weight's {kernel}")
    strides = tuple(attr(node, "strides", [1] * n))
    dilations = tuple(attr(node, "dilations", [1] * n))
    out_pad = tuple(attr(node, "output_padding", [0] * n))
    if len(strides) != n or len(dilations) != n or len(out_pad) != n or min(strides + dilations) < 1:
        raise Unsupported(f"strides {strides} / dilations {dilations} / output_padding {out_pad} do not fit")
    spatial = x.shape[-n:]
    full = [s * (i - 1) + op + d * (k - 1) + 1 for i, s, op, d, k in zip(spatial, strides, out_pad, dilations, kernel)]
    out_shape = attr(node, "output_shape", None)
    auto = attr(node, "auto_pad", "NOTSET")
    if out_shape is not None or auto in ("SAME_UPPER", "SAME_LOWER"):
        want = list(out_shape)[-n:] if out_shape is not None else [i * s for i, s in zip(spatial, strides)]
        total = [f - o for f, o in zip(full, want)]
        if min(total) < 0:
            raise Unsupported(f"output_shape {want} is larger than the transposed convolution gives")
        small = [t // 2 for t in total]
        big = [t - t // 2 for t in total]
        pads = tuple(small + big) if auto == "SAME_UPPER" else tuple(big + small)
    elif auto == "VALID":
        pads = (0,) * (2 * n)
    elif auto == "NOTSET":
        pads = tuple(attr(node, "pads", [0] * (2 * n)))
    else:
        raise Unsupported(f"unknown auto_pad {auto!r}")
    if len(pads) != 2 * n or min(pads) < 0:
        raise Unsupported(f"pads {pads} do not fit a {n}-d kernel")
    out = tuple(f - pads[i] - pads[i + n] for i, f in enumerate(full))
    if min(out) <= 0:
        raise Unsupported(f"pads {pads} leave an empty output")
    shape = (*x.shape[: -n - 1], w.shape[1] * groups, *out)
    return ctx.add(ir.ConvTranspose, [x], shape=shape, weight=w, bias=b, strides=strides, pads=pads,
                   output_padding=out_pad, dilations=dilations, groups=groups)
