"""The graph's one input and analysed output, and the fixed input shape the IR is built for.

For inputs of rank >= 2 a leading dim that is dynamic or 1 is the batch axis, left out of
`input_shape`; otherwise the whole declared tensor is one input point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import onnx

from regionaudit.errors import RejectedModel
from regionaudit.limits import MAX_ACTIVATION_ELEMENTS
from regionaudit.importer.registry import FLOAT_TYPES


@dataclass
class Signature:
    input_name: str
    input_elem_type: int
    input_shape: tuple[int, ...]  # one probe, batch axis left out
    graph_input_shape: tuple[int, ...]  # what the graph sees at batch size 1
    has_batch: bool
    batch_dynamic: bool
    output_name: str
    outputs: list[str]
    notes: list[str]
    extra_inputs: list[str] = field(default_factory=list)  # more graph inputs: refused with the rest


def resolve_signature(graph: onnx.GraphProto, input_shape=None, output_name=None) -> Signature:
    notes: list[str] = []
    inp, extra = _inputs(graph)
    tt = inp.type.tensor_type
    if not inp.type.HasField("tensor_type") or tt.elem_type not in FLOAT_TYPES:
        kind = onnx.TensorProto.DataType.Name(tt.elem_type) if inp.type.HasField("tensor_type") else "non-tensor"
        raise RejectedModel(f"graph input '{inp.name}' is {kind}; regionaudit needs a float tensor input")
    given = None if input_shape is None else tuple(int(d) for d in input_shape)
    if given is not None and any(d <= 0 for d in given):
        raise RejectedModel(f"--input-shape {_fmt(given)} has a dimension that is not positive")

    if tt.HasField("shape"):
        declared = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tt.shape.dim]
        labels = [str(v) if v is not None else d.dim_param or "?" for v, d in zip(declared, tt.shape.dim)]
        has_batch = len(declared) >= 2 and declared[0] in (None, 1)
        batch_dynamic = has_batch and declared[0] is None
        probe = declared[1:] if has_batch else declared
        labels = labels[1:] if has_batch else labels
        if len(declared) >= 2 and not has_batch:
            notes.append(f"input '{inp.name}' declares a fixed first axis of {declared[0]}, not a batch axis (1 or "
                         f"dynamic): its {declared[0]} rows are analysed together, as one input point")
    elif given is not None:
        notes.append(f"input '{inp.name}' declares no shape; using --input-shape {_fmt(given)} after a batch axis")
        probe, has_batch, batch_dynamic = [None] * len(given), True, True
        labels = ["?"] * len(given)
    else:
        raise RejectedModel(f"graph input '{inp.name}' declares no shape; pass --input-shape (batch axis excluded)")

    shape = _fill(inp.name, probe, given, labels)
    graph_shape = (1, *shape) if has_batch else shape
    if math.prod(shape) > MAX_ACTIVATION_ELEMENTS:
        raise RejectedModel(f"input shape {_fmt(shape)} is too large")
    outputs = [o.name for o in graph.output]
    chosen = output_name if output_name is not None else outputs[0]
    if chosen not in outputs:
        raise RejectedModel(f"no graph output named '{chosen}'; outputs are: {', '.join(outputs)}")
    if output_name is None and len(outputs) > 1:
        notes.append(f"the graph has {len(outputs)} outputs ({', '.join(outputs)}); the analysis is on the first, "
                     f"'{chosen}' (--output-name picks another)")
    return Signature(inp.name, tt.elem_type, shape, graph_shape, has_batch, batch_dynamic, chosen, outputs, notes,
                     extra)


def _inputs(graph: onnx.GraphProto) -> tuple[onnx.ValueInfoProto, list[str]]:
    """The first graph input that is not an initializer (older exporters list weights as inputs),
    and the names of any others: several inputs are refused by the graph walk, together with
    every other reason, so that one refusal names them all."""
    constants = {t.name for t in graph.initializer}
    real = [i for i in graph.input if i.name not in constants]
    if not real:
        raise RejectedModel("the graph has no input (every input is an initializer)")
    floats = [i for i in real if i.type.HasField("tensor_type") and i.type.tensor_type.elem_type in FLOAT_TYPES]
    main = (floats or real)[0]  # an integer mask or id input beside it is one of the others
    return main, [i.name for i in real if i is not main]


def _fill(name: str, probe: list[int | None], given: tuple[int, ...] | None, labels: list[str]) -> tuple[int, ...]:
    """The input shape: the declared one, or --input-shape where it fits it; `labels` shows each
    declared dim (its size, the name of a symbolic one, or ?)."""
    declared = ",".join(labels)
    if given is None:
        if any(d is None for d in probe):
            raise RejectedModel(
                f"input '{name}' has dynamic dims ({declared}, batch axis excluded); pass --input-shape"
            )
        return tuple(probe)
    if len(given) != len(probe) or any(d is not None and d != g for d, g in zip(probe, given)):
        raise RejectedModel(
            f"--input-shape {_fmt(given)} does not fit input '{name}' declared as ({declared}) (batch axis excluded)"
        )
    return given


def _fmt(shape) -> str:
    return ",".join(map(str, shape)) or "()"
