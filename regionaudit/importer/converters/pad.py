"""Pad: constant padding is `ir.Pad` (zeros), then the constant added on the border where it is not
zero (`ir.Scale`); reflect / edge / wrap modes pick input elements (`ir.Take`)."""

import numpy as np
from onnx import helper

from regionaudit.importer.converters._affine import scale
from regionaudit.importer.converters._padded import padded
from regionaudit.importer.converters._take import take
from regionaudit.importer.fold import fold_node
from regionaudit.importer.registry import Unsupported, attr, converter


@converter("Pad")
def pad(node, ctx):
    """Constant mode (affine: zero padding plus the constant on the border), and reflect / edge /
    wrap modes (each output element is one input element). Opset 11 moved pads/value to inputs;
    opset 18 added axes, opset 19 wrap."""
    x = ctx.data(0)
    rank = len(x.shape)
    mode = attr(node, "mode", "constant")
    if ctx.opset < 11:
        pads, value = attr(node, "pads", []), float(attr(node, "value", 0.0))
    else:
        pads = [int(p) for p in np.asarray(ctx.const(1, "pads", float64=False)).reshape(-1)]
        v = ctx.const(2, "constant_value") if mode == "constant" else None  # elsewhere it does not matter
        value = 0.0 if v is None or v.size == 0 else float(v.reshape(-1)[0])
        axes = ctx.const(3, "axes", float64=False)
        if axes is not None:
            given = [int(a) for a in axes.reshape(-1)]
            axes = [a + rank if a < 0 else a for a in given]
            if len(set(axes)) != len(axes) or not all(0 <= a < rank for a in axes) or len(pads) != 2 * len(axes):
                raise Unsupported(f"axes {given} with pads {pads} do not fit {x.shape}")
            full = [0] * (2 * rank)
            for j, a in enumerate(axes):
                full[a], full[a + rank] = pads[j], pads[j + len(axes)]
            pads = full
    if len(pads) != 2 * rank:
        raise Unsupported(f"pads {pads} do not fit {x.shape}")
    if mode != "constant":
        return _picked(ctx, x, mode, pads)
    if not np.isfinite(value):
        raise Unsupported(f"padding value {value:g} is not finite")
    y = padded(ctx, x, pads)
    if value == 0.0 or not any(p > 0 for p in pads):
        return y
    return scale(ctx, y, add=value * _border(x.shape, pads))


def _picked(ctx, x, mode: str, pads: list[int]):
    """Reflect / edge / wrap: the input's positions cropped by the negative pads, then the Pad
    run on them with the positive ones (onnx's reference evaluator, `_take`), in the order
    onnxruntime takes: a wrap then repeats the cropped input, and a reflection may not reach
    past it."""
    rank = len(x.shape)
    grow = [max(0, p) for p in pads]
    kept = tuple(slice(max(0, -pads[i]), x.shape[i] - max(0, -pads[i + rank])) for i in range(rank))
    positions = np.arange(int(np.prod(x.shape)), dtype=np.int64).reshape(x.shape)[kept]
    if min(positions.shape) <= 0:
        raise Unsupported(f"pads {pads} leave nothing of {x.shape}")
    if mode == "reflect" and any(max(grow[i], grow[i + rank]) >= positions.shape[i] for i in range(rank)):
        raise Unsupported(f"reflect pads {grow} reach past the input {positions.shape}: at most its size less one")
    if ctx.opset < 11:
        one = helper.make_node("Pad", ["x"], ["y"], mode=mode, pads=grow)
        index = fold_node(one, [positions], ctx.opsets)[0]
    else:
        one = helper.make_node("Pad", ["x", "pads"], ["y"], mode=mode)
        index = fold_node(one, [positions, np.array(grow, dtype=np.int64)], ctx.opsets)[0]
    return take(ctx, x, index)


def _border(shape: tuple[int, ...], pads: list[int]) -> np.ndarray:
    """1 where padding put an element, 0 where the input's (cropped by negative pads) are."""
    rank = len(shape)
    kept = tuple(slice(max(0, -pads[i]), shape[i] - max(0, -pads[i + rank])) for i in range(rank))
    return np.pad(np.zeros(shape)[kept], [(max(0, pads[i]), max(0, pads[i + rank])) for i in range(rank)],
                  constant_values=1.0)
