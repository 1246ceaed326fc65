"""onnx's reference evaluator, mended where it fails on models onnxruntime cannot run (onnx
1.23). onnxruntime has no float64 ConvTranspose, Conv or GlobalLpPool kernel, so a float64 model
holding one is checked against the evaluator (`check.run_reference`), whose ConvTranspose is wrong
with groups or `output_shape` and which has no GlobalLpPool."""

from __future__ import annotations

import numpy as np
from onnx.reference.op_run import OpRun
from onnx.reference.ops.op_conv_transpose import ConvTranspose as OnnxConvTranspose


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


class GlobalLpPool(OpRun):
    """The p-norm of each channel over its spatial axes (ONNX spec)."""

    def _run(self, x, p=None):
        p = 2 if p is None else p
        axes = tuple(range(2, x.ndim))
        return ((np.abs(x) ** p).sum(axis=axes, keepdims=True) ** (1.0 / p)).astype(x.dtype),


MENDED = [ConvTranspose, GlobalLpPool]
