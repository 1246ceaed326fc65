"""Zero padding and step-1 cropping as one `ir.Pad` (negative amounts crop): Pad and Slice."""

from regionaudit import ir
from regionaudit.importer.registry import Data, Unsupported


def padded(ctx, x: Data, pads: list[int]) -> Data:
    """`x` with ONNX-style pads (begin..., end...); negative amounts crop."""
    rank = len(x.shape)
    if not any(pads):
        return x
    shape = tuple(d + pads[i] + pads[i + rank] for i, d in enumerate(x.shape))
    if min(shape) <= 0:
        raise Unsupported(f"pads {pads} leave nothing of {x.shape}")
    return ctx.add(ir.Pad, [x], shape=shape, pads=tuple(pads))
