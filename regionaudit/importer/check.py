"""Every import is checked: the IR and onnxruntime run on the same inputs and must agree.

Where onnxruntime cannot run the model (e.g. float64 ops it lacks), onnx's reference evaluator is
the reference instead, mended where it fails (`reference_ops`). The comparison is on the analysed
tensor (before a stripped Softmax).
"""

from __future__ import annotations

import numpy as np
import onnx
import torch

from regionaudit.errors import BadData, RejectedModel
from regionaudit.importer.graph import Built
from regionaudit.importer.signature import Signature

MAX_REL_ERR = 1e-4
LOW_PRECISION_EPS = 8  # a float16/bfloat16 reference computes in its own precision: 8 of its eps
N_RANDOM = 8


def validate(model: onnx.ModelProto, built: Built, sig: Signature, check_inputs=None, seed: int = 0) -> dict:
    xs = _inputs(sig, check_inputs, seed)
    np_dtype = onnx.helper.tensor_dtype_to_np_dtype(sig.input_elem_type)
    biggest = max(float(np.abs(x).max(initial=0.0)) for x in xs)
    if biggest > float(np.finfo(np_dtype).max):
        raise BadData(f"data values up to {biggest:.3g} do not fit the model's {np.dtype(np_dtype).name} input")
    feeds = [x.astype(np_dtype).reshape(sig.graph_input_shape) for x in xs]
    ours = built.network.forward(torch.from_numpy(np.stack([f.astype(np.float64) for f in feeds])))
    ours = ours.cpu().double().numpy()
    ref, reference = run_reference(model, sig.input_name, built.analysed_tensor, feeds)
    if ref.shape != ours.shape:
        raise RejectedModel(f"the IR gives {ours.shape[1]} outputs where {reference} gives {ref.shape[1]}")
    if not np.isfinite(ref).all():
        inputs = "random inputs and the first data rows" if check_inputs is not None else "random inputs"
        raise RejectedModel(f"{reference} gives NaN or infinite outputs on {inputs}")
    if not np.isfinite(ours).all():
        raise RejectedModel("the imported network gives NaN or infinite outputs where the reference does not")
    abs_err = float(np.abs(ours - ref).max(initial=0.0))
    scale = float(np.abs(ref).max(initial=0.0))
    rel_err = abs_err / scale if scale > 0 else (0.0 if abs_err == 0 else float("inf"))
    tolerance = max(_tolerance(t) for t in [sig.input_elem_type, *built.rounded_to])
    if not rel_err <= tolerance:
        raise RejectedModel(
            f"imported network disagrees with {reference}: max relative error {rel_err:.3g} "
            f"(max abs error {abs_err:.3g}) on output '{built.analysed_tensor}'"
        )
    return {
        "max_abs_err": abs_err,
        "max_rel_err": rel_err,
        "samples": len(feeds),
        "reference": reference,
        "dtype": str(built.network.dtype).removeprefix("torch."),
    }


def _tolerance(elem_type: int) -> float:
    """Relative error allowed where the data is held in this ONNX float type."""
    if elem_type == onnx.TensorProto.BFLOAT16:
        return LOW_PRECISION_EPS * 2.0**-7
    info = np.finfo(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    return MAX_REL_ERR if info.bits >= 32 else LOW_PRECISION_EPS * float(info.eps)


def _inputs(sig: Signature, check_inputs, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    xs = list(rng.standard_normal((N_RANDOM, *sig.input_shape)))
    if check_inputs is not None:
        rows = np.asarray(check_inputs, dtype=np.float64)
        size = int(np.prod(sig.input_shape))
        if rows.ndim < 2 or int(np.prod(rows.shape[1:])) != size:
            raise BadData(
                f"data rows of shape {tuple(rows.shape[1:])} do not fit the model's input shape "
                f"{tuple(sig.input_shape)} ({size} values per row)"
            )
        xs += list(rows.reshape(-1, *sig.input_shape))
    return xs


def run_reference(model: onnx.ModelProto, input_name: str, tensor: str, feeds: list[np.ndarray]):
    """(outputs (N, n), name of the runtime): onnxruntime, else onnx's reference evaluator."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    if tensor not in {o.name for o in probe.graph.output}:
        probe.graph.output.append(onnx.ValueInfoProto(name=tensor))
    errors = []
    for name, runner in (("onnxruntime", _ort_runner), ("onnx.reference", _reference_runner)):
        try:
            run = runner(probe, tensor)
            outs = [np.asarray(run({input_name: f}), dtype=np.float64).reshape(-1) for f in feeds]
            return np.stack(outs), name
        except Exception as exc:  # runtimes raise their own types; try the next one
            errors.append(f"{name}: {' '.join(str(exc).split())[:200]}")
    raise RejectedModel(f"cannot run the model to check the import ({'; '.join(errors)})")


def _ort_runner(model: onnx.ModelProto, tensor: str):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 4  # failures are reported by us, once
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return lambda feed: session.run([tensor], feed)[0]


def _reference_runner(model: onnx.ModelProto, tensor: str):
    from onnx.reference import ReferenceEvaluator

    from regionaudit.importer.reference_ops import MENDED

    evaluator = ReferenceEvaluator(model, new_ops=MENDED)
    return lambda feed: evaluator.run([tensor], feed)[0]
