"""Constant folding: a node whose inputs are all constants is evaluated once, at import.

onnx's reference evaluator runs the node alone, so every op (Shape arithmetic, ConstantOfShape,
Range, ...) folds the same way in every opset, without a numpy twin of each op here.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator

from regionaudit.errors import one_line
from regionaudit.importer.reference_ops import MENDED
from regionaudit.importer.refusal import CONTROL_FLOW
from regionaudit.importer.registry import Unsupported
from regionaudit.limits import MAX_FOLDED_ELEMENTS


def fold_node(node: onnx.NodeProto, inputs: list[np.ndarray | None], opsets: dict[str, int]) -> list[np.ndarray]:
    """Outputs of `node` evaluated on constant `inputs` (None for an omitted optional input)."""
    names = [f"in{i}" if x is not None else "" for i, x in enumerate(inputs)]
    one = onnx.NodeProto()
    one.CopyFrom(node)
    del one.input[:]
    one.input.extend(names)
    del one.output[:]
    one.output.extend(f"out{i}" if o else "" for i, o in enumerate(node.output))
    feeds = {n: np.asarray(x) for n, x in zip(names, inputs) if n}
    graph = onnx.helper.make_graph(
        [one],
        "fold",
        [_info(n, x) for n, x in feeds.items()],
        [onnx.ValueInfoProto(name=o) for o in one.output if o],
    )
    model = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid(d, v) for d, v in opsets.items()]
    )
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
        # a Loop's trip count or a Scan's length is unbounded work: never run at import
        raise Unsupported("control flow is not evaluated at import, even on constants", kind=CONTROL_FLOW)
    _check_output_size(model, feeds)
    try:
        results = ReferenceEvaluator(model, new_ops=MENDED).run(None, feeds)
    except Exception as exc:  # the evaluator raises many types; all mean "cannot fold"
        raise Unsupported(f"cannot evaluate on constants ({_one_line(exc)})") from None
    out = [np.asarray(r) for r in results]
    for r in out:
        if r.size > MAX_FOLDED_ELEMENTS:
            raise Unsupported(f"builds a constant of shape {r.shape}, more than {MAX_FOLDED_ELEMENTS} values")
    return out


def _check_output_size(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> None:
    """Refuse, before it runs, a node whose small integer inputs ask for a huge result
    (ConstantOfShape, Expand, Tile, Range with absurd sizes): onnx shape inference reads them."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name, x in feeds.items():
        if x.dtype.kind in "iu" and x.size <= 64:
            probe.graph.initializer.append(numpy_helper.from_array(x, name))
    try:
        inferred = onnx.shape_inference.infer_shapes(probe, data_prop=True)
    except Exception:  # inference is a guard only; the evaluator reports real problems
        return
    for out in inferred.graph.output:
        dims = out.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shape = tuple(d.dim_value for d in dims)
            if math.prod(shape) > MAX_FOLDED_ELEMENTS:
                raise Unsupported(f"would build a constant of shape {shape}, more than {MAX_FOLDED_ELEMENTS} values")


def _info(name: str, x: np.ndarray) -> onnx.ValueInfoProto:
    elem = onnx.helper.np_dtype_to_tensor_dtype(x.dtype)
    return onnx.helper.make_tensor_value_info(name, elem, x.shape)


def _one_line(exc: Exception) -> str:
    text = one_line(str(exc))
    return (text[:160] + "...") if len(text) > 160 else text or type(exc).__name__
