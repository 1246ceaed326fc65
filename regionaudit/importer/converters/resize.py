"""Resize and Upsample with constant scales or sizes: a fixed linear map (`ir.Resample`).

Every mode (nearest, linear, cubic, with antialias) interpolates one axis at a time, so the map is
one matrix per resized axis. Each linear or cubic matrix is found once, at import, by onnx's
reference evaluator resizing that axis of a tensor that holds the identity (its other changed axis
kept at scale 1), so every coordinate transformation is exactly the op's own. A nearest matrix is
the spec's formula in float32 (`_nearest`), as onnxruntime computes it: the evaluator's float64
counts cells and breaks ties otherwise, and lacks 'tf_half_pixel_for_nn' (tf2onnx writes it for
TensorFlow's nearest resize with half-pixel centres, e.g. Keras' UpSampling2D). Opset 10 has
(X, scales); opset 11 added roi and sizes; opset 18 added `axes` and `keep_aspect_ratio_policy`.
Upsample: scales as an attribute (opset 7), then as an input (opset 9).
"""

import numpy as np
import onnx
import torch

from regionaudit import ir
from regionaudit.importer.fold import fold_node
from regionaudit.importer.registry import Data, Unsupported, attr, converter


def _target(node, ctx, x: Data):
    """('scales', full-rank scales) or ('sizes', full-rank sizes)."""
    rank = len(x.shape)
    if node.op_type == "Upsample" and ctx.opset < 9:
        return "scales", [float(s) for s in attr(node, "scales", [])]
    for i in range(1, len(node.input)):
        if isinstance(ctx.input(i), Data):
            raise Unsupported(f"input {i} (scales, sizes or roi) is computed from the input")
    if node.op_type == "Upsample" or ctx.opset < 11:
        scales, sizes = ctx.const(1, "scales"), None
    else:
        scales, sizes = ctx.const(2, "scales"), ctx.const(3, "sizes", float64=False)
    axes = attr(node, "axes", None)
    axes = list(range(rank)) if axes is None else [a + rank if a < 0 else a for a in axes]
    if scales is not None and scales.size and sizes is not None and sizes.size:
        raise Unsupported("both scales and sizes are given; the op takes one of them")
    if scales is not None and scales.size:
        full = [1.0] * rank
        for a, s in zip(axes, scales.reshape(-1)):
            full[a] = float(s)
        return "scales", full
    if sizes is not None and sizes.size:
        if attr(node, "keep_aspect_ratio_policy", "stretch") != "stretch":
            raise Unsupported("keep_aspect_ratio_policy other than 'stretch' is not supported")
        full = list(x.shape)
        for a, s in zip(axes, sizes.reshape(-1)):
            full[a] = int(s)
        return "sizes", full
    raise Unsupported("neither scales nor sizes are given")


def _axis_matrix(node, ctx, x: Data, form: str, target: list, axis: int) -> np.ndarray:
    """(out, in) matrix of the resize along `axis`: the identity resized along that axis."""
    rank, n = len(x.shape), x.shape[axis]
    other = 0 if axis != 0 else 1
    shape = [1] * rank
    shape[axis] = shape[other] = n
    eye = np.moveaxis(np.eye(n).reshape(n, n, *([1] * (rank - 2))), (0, 1), (other, axis))
    eye = np.ascontiguousarray(eye.reshape(shape))
    if node.op_type == "Upsample" or ctx.opset < 11:
        # Resize-10 is Upsample: asymmetric; its nearest pixel is not in the spec, and onnxruntime
        # (whose reading exporters target) takes the floor, or the ceiling where the axis shrinks
        s = [1.0] * rank
        s[axis] = target[axis]
        mode = {"bilinear": "linear"}.get(attr(node, "mode", "nearest"), attr(node, "mode", "nearest"))
        rounding = "ceil" if target[axis] < 1 else "floor"
        if mode == "nearest":
            return _nearest(n, form, target, axis, "asymmetric", rounding)
        one = onnx.helper.make_node("Resize", ["x", "", "s", "z"], ["y"], mode=mode,
                                    coordinate_transformation_mode="asymmetric")
        cells = int(np.float32(target[axis]) * np.float32(n))  # onnxruntime's count, in float32
        if cells == int(float(np.float32(target[axis])) * n):
            inputs = [eye, None, np.array(s, np.float32), None]
        else:  # n x scale within rounding of a whole count: the count onnxruntime takes
            inputs = [eye, None, None, np.array(shape[:axis] + [cells] + shape[axis + 1:])]
        out = np.asarray(fold_node(one, inputs, {"": 13})[0], np.float64)
        return np.moveaxis(out, (axis, other), (0, 1)).reshape(out.shape[axis], n)
    if attr(node, "mode", "nearest") == "nearest":
        return _nearest(n, form, target, axis, attr(node, "coordinate_transformation_mode", "half_pixel"),
                        attr(node, "nearest_mode", "round_prefer_floor"))
    if attr(node, "coordinate_transformation_mode", "half_pixel") == "tf_half_pixel_for_nn":
        raise Unsupported("coordinate_transformation_mode 'tf_half_pixel_for_nn' is defined for mode 'nearest' only")
    one = onnx.NodeProto()
    one.CopyFrom(node)
    keep = [a for a in one.attribute if a.name != "axes"]
    del one.attribute[:]
    one.attribute.extend(keep)
    inputs: list = [eye] + [None] * (max(len(node.input), 4) - 1)
    if form == "scales":
        s = [1.0] * rank
        s[axis] = target[axis]
        inputs[1 if ctx.opset < 11 else 2] = np.array(s, np.float32)
    else:
        sz = [1] * rank
        sz[axis], sz[other] = target[axis], n
        inputs[3] = np.array(sz, np.int64)
    if ctx.opset >= 11 and node.op_type == "Resize" and len(node.input) > 1:
        roi = ctx.input(1)
        inputs[1] = np.array([], np.float32) if roi is None or isinstance(roi, Data) else roi
    out = np.asarray(fold_node(one, inputs, ctx.opsets)[0], np.float64)
    m = out.shape[axis]
    return np.moveaxis(out, (axis, other), (0, 1)).reshape(m, n)


def _nearest(n: int, form: str, target: list, axis: int, ctm: str, rounding: str) -> np.ndarray:
    """(out, in) 0/1 matrix of a nearest resize, in float32 as onnxruntime computes it: m =
    floor(n x scale) cells, each reading the input at coordinate transformation `ctm` of i, rounded
    by `rounding` (nearest_mode; Upsample and Resize-10 are asymmetric, their own rounding) and
    clamped to the input. onnx's evaluator, in float64, counts
    floor(10 x 0.7f) = 6 cells where onnxruntime (and torch) count 7, and breaks ties the other
    way (3 / 0.6f is 5 in float32, 4.99... in float64)."""
    f32 = np.float32
    if form == "scales":
        scale = f32(target[axis])
        m = int(scale * f32(n))
    else:
        m = int(target[axis])
        scale = f32(m) / f32(n)
    i = np.arange(m, dtype=f32)
    half = f32(0.5)
    if ctm == "asymmetric":
        x = i / scale
    elif ctm == "tf_half_pixel_for_nn":
        x = (i + half) / scale
    elif ctm == "align_corners":
        x = np.zeros(m, f32) if m == 1 else i * f32(n - 1) / f32(m - 1)
    elif ctm == "pytorch_half_pixel":
        x = (i + half) / scale - half if m > 1 else np.zeros(m, f32)
    elif ctm == "half_pixel_symmetric":
        adjustment = f32(m) / (scale * f32(n))
        x = f32(n) / f32(2) * (f32(1) - adjustment) + (i + half) / scale - half
    elif ctm == "half_pixel":
        x = (i + half) / scale - half
    else:
        raise Unsupported(f"unknown coordinate_transformation_mode {ctm!r}")
    pick = {
        "round_prefer_floor": lambda v: np.where(v == np.floor(v) + half, np.floor(v), np.round(v)),
        "round_prefer_ceil": lambda v: np.where(v == np.floor(v) + half, np.ceil(v), np.round(v)),
        "floor": np.floor,
        "ceil": np.ceil,
    }.get(rounding)
    if pick is None:
        raise Unsupported(f"unknown nearest_mode {rounding!r}")
    cells = np.clip(pick(x), 0, n - 1).astype(np.int64)
    out = np.zeros((m, n))
    out[np.arange(m), cells] = 1.0
    return out


@converter("Resize", "Upsample")
def resize(node, ctx):
    x = ctx.data(0)
    if attr(node, "coordinate_transformation_mode", "") == "tf_crop_and_resize":
        raise Unsupported("coordinate_transformation_mode 'tf_crop_and_resize' is not supported")
    if len(x.shape) < 2:
        raise Unsupported(f"input {x.shape} has fewer than 2 axes")
    form, target = _target(node, ctx, x)
    if len(target) != len(x.shape):
        raise Unsupported(f"{form} {target} do not fit input {x.shape}")
    if form == "scales" and node.op_type == "Resize" and ctx.opset >= 11 and attr(node, "mode", "nearest") != "nearest":
        # onnxruntime counts floor(n x scale) cells in float32 (10 x 0.7f gives 7, as torch does)
        # and maps align_corners by that whole count; onnx's evaluator, which gives the linear and
        # cubic matrices, computes both in float64 (6 cells; 7.5 for 5 x 1.5): such a resize is
        # converted from onnxruntime's sizes
        cells = [int(np.float32(s) * np.float32(n)) for s, n in zip(target, x.shape)]
        wide = [int(float(np.float32(s)) * n) for s, n in zip(target, x.shape)]
        if cells != wide or attr(node, "coordinate_transformation_mode", "half_pixel") == "align_corners":
            form, target = "sizes", cells
    if node.op_type == "Upsample" and min(target) < 1:
        raise Unsupported(f"scales {target}: Upsample's are at least 1 (onnxruntime refuses the model)")
    changed = [a for a in range(len(x.shape)) if (target[a] != 1.0 if form == "scales" else target[a] != x.shape[a])]
    if not changed:
        return x
    mats = [_axis_matrix(node, ctx, x, form, target, a) for a in changed]
    shape = list(x.shape)
    for a, m in zip(changed, mats):
        shape[a] = m.shape[0]
    if min(shape) <= 0:
        raise Unsupported(f"the resized shape {tuple(shape)} is empty")
    return ctx.add(ir.Resample, [x], shape=tuple(shape), axes=tuple(changed),
                   matrices=[torch.from_numpy(m) for m in mats])
