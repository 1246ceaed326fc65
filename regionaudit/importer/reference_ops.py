"""onnx's reference evaluator, mended where it fails on models onnxruntime cannot run (onnx
1.23). onnxruntime has no float64 ConvTranspose, Conv, GlobalLpPool, Upsample or Resize-10 kernel,
so a float64 model holding one is checked against the evaluator (`check.run_reference`), whose
ConvTranspose is wrong with groups or `output_shape`, which has no GlobalLpPool, runs Upsample
only at whole scales in nearest mode and not at all from its attribute (opset 7), reads
Resize-10's scales as the later opsets' roi, and normalises BatchNormalization (opsets 9-13) by
the batch's own statistics wherever the node has a momentum attribute."""

from __future__ import annotations

import numpy as np
from onnx.reference.op_run import OpRun
from onnx.reference.ops.op_conv_transpose import ConvTranspose as OnnxConvTranspose
from onnx.reference.ops.op_resize import Resize as OnnxResize


class ConvTranspose(OnnxConvTranspose):
    """Each group through the evaluator's ungrouped branch (its grouped one slices the weight
    (C, M / group, ...) by output channels and writes one channel per group), with the pads
    that `output_shape` implies computed as the ONNX spec says (it ignores them)."""

    def _run(self, X, W, B=None, **attrs):
        if attrs.get("output_shape") is not None:
            attrs = {**attrs, **_pads_of_output_shape(X.shape[2:], W.shape[2:], attrs)}
        group = attrs.get("group") or 1
        if group == 1:
            return super()._run(X, W, B, **attrs)
        biases = [None] * group if B is None else np.split(B, group)
        parts = [super(ConvTranspose, self)._run(x, w, b, **{**attrs, "group": 1})[0]
                 for x, w, b in zip(np.split(X, group, axis=1), np.split(W, group, axis=0), biases)]
        return (np.concatenate(parts, axis=1),)


def _pads_of_output_shape(spatial, kernel, attrs) -> dict:
    """The explicit pads that give ConvTranspose its `output_shape`: the total from the spec's
    formula, the odd one at the start unless SAME_UPPER."""
    n = len(spatial)
    strides, dilations = attrs.get("strides") or [1] * n, attrs.get("dilations") or [1] * n
    extra = attrs.get("output_padding") or [0] * n
    shape = list(attrs["output_shape"])[-n:]
    total = [s * (i - 1) + e + (k - 1) * d + 1 - o for s, i, e, k, d, o in zip(strides, spatial, extra, kernel, dilations, shape)]
    upper = attrs.get("auto_pad") == "SAME_UPPER"
    start = [t // 2 if upper else t - t // 2 for t in total]
    return {"output_shape": None, "auto_pad": "NOTSET", "pads": start + [t - a for t, a in zip(total, start)]}


class BatchNormalization(OpRun):
    """Inference: the running mean and variance, as onnxruntime runs a node with one output. The
    evaluator's opset 9-13 version takes the batch's mean and variance whenever the node has a
    momentum attribute, which every PyTorch export writes (a float64 ResNet was refused with 73 %
    error). A node in training mode is refused by the import before any check."""

    def _run(self, x, scale, bias, mean, var, epsilon=None, momentum=None, training_mode=None, is_test=None,
             spatial=None):
        shape = (-1,) + (1,) * (x.ndim - 2)
        eps = 1e-5 if epsilon is None else epsilon
        y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * scale.reshape(shape) + bias.reshape(shape)
        return y.astype(x.dtype),


class GlobalLpPool(OpRun):
    """The p-norm of each channel over its spatial axes (ONNX spec)."""

    def _run(self, x, p=None):
        p = 2 if p is None else p
        axes = tuple(range(2, x.ndim))
        return ((np.abs(x) ** p).sum(axis=axes, keepdims=True) ** (1.0 / p)).astype(x.dtype),


class Upsample(OpRun):
    """Upsample, its scales an attribute (opset 7) or an input (opset 9): `_asymmetric`."""

    def _run(self, x, scales=None, mode=None):
        return _asymmetric(x, scales, mode or "nearest"),


class Resize(OnnxResize):
    """Resize-10 is Upsample's (X, scales) (`_asymmetric`); later opsets are the evaluator's."""

    def _run(self, x, *inputs, **attrs):
        if self.run_params["opsets"].get("", 0) < 11:
            return _asymmetric(x, inputs[0], attrs.get("mode") or "nearest"),
        return super()._run(x, *inputs, **attrs)


def _asymmetric(x: np.ndarray, scales, mode: str) -> np.ndarray:
    """Upsample and Resize-10 (ONNX spec): output i of an axis of n cells (floor(n x scale) of them)
    reads input i / scale. Nearest takes the floor of it, or the ceiling where the axis shrinks,
    as onnxruntime does (the spec leaves it open); linear ('bilinear' in opset 7) interpolates
    between its two neighbours, the last cell held past the end."""
    if mode not in ("nearest", "linear", "bilinear"):
        raise ValueError(f"Upsample mode {mode!r}")
    out = x
    for axis, scale in enumerate(np.asarray(scales, np.float64).reshape(-1)):
        n = out.shape[axis]
        at = np.arange(int(np.floor(n * scale))) / scale
        if mode == "nearest":
            cells = np.minimum(np.ceil(at) if scale < 1 else np.floor(at), n - 1).astype(np.int64)
            out = np.take(out, cells, axis=axis)
            continue
        lo = np.minimum(np.floor(at), n - 1).astype(np.int64)
        hi = np.minimum(lo + 1, n - 1)
        frac = (at - lo).reshape([-1] + [1] * (out.ndim - axis - 1))
        out = np.take(out, lo, axis=axis) * (1 - frac) + np.take(out, hi, axis=axis) * frac
    return out.astype(x.dtype)


MENDED = [BatchNormalization, ConvTranspose, GlobalLpPool, Upsample, Resize]
