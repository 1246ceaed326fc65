"""Structural checks of a parsed graph, before any converter or runtime looks at it.

A hostile or broken graph is refused here with one line naming the problem: names defined twice,
tensors never defined, cycles, absurd declared dims, too many nodes, a future IR version. Types
and shapes are left to the converters and the check against onnxruntime: onnx's strict inference
would also refuse what the product accepts on purpose (float64 data with float32 weights).
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter

import onnx

from regionaudit.errors import RejectedModel
from regionaudit.limits import MAX_ACTIVATION_ELEMENTS, MAX_NODES


def check_graph(model: onnx.ModelProto) -> None:
    """Refuse a graph whose structure is broken; put its nodes in topological order."""
    graph = model.graph
    _count_nodes(graph)
    _check_names(graph)
    _check_defined_and_acyclic(graph)
    _check_input_dims(graph)
    _check_arity(graph, {o.domain or "": o.version for o in model.opset_import}.get("", 1))
    if model.ir_version > onnx.IR_VERSION:
        raise RejectedModel(f"IR version {model.ir_version} is newer than the onnx package reads ({onnx.IR_VERSION})")


def _node_name(node: onnx.NodeProto) -> str:
    return node.name or f"{node.op_type}_{node.output[0] if node.output else ''}"


def _count_nodes(graph: onnx.GraphProto) -> None:
    count, stack = 0, [graph]
    while stack:
        g = stack.pop()
        count += len(g.node)
        if count > MAX_NODES:
            raise RejectedModel(f"the graph has more than {MAX_NODES} nodes (subgraphs included)")
        for node in g.node:
            for a in node.attribute:
                stack.extend([a.g] if a.type == onnx.AttributeProto.GRAPH else [])
                stack.extend(a.graphs)


def _check_names(graph: onnx.GraphProto) -> None:
    """Every name is text (protobuf hands a string field that is not UTF-8 back as bytes: a
    damaged file), and every tensor is defined once: by a graph input, an initializer or one
    node output."""
    named = [*graph.initializer, *graph.input, *graph.output, *graph.node]
    for name in [x.name for x in named] + [n for node in graph.node for n in (*node.input, *node.output)]:
        if isinstance(name, bytes):
            shown = name.decode("utf-8", errors="replace")
            raise RejectedModel(f"the name {shown!r} is not valid UTF-8 text (the file is damaged)")
    for what, names in (
        ("initializer", [t.name for t in graph.initializer]),
        ("graph input", [i.name for i in graph.input]),
        ("graph output", [o.name for o in graph.output]),
    ):
        dup = [n for n, k in Counter(names).items() if k > 1]
        if dup:
            raise RejectedModel(f"{what} name '{dup[0]}' appears more than once")
    defined = {t.name: "an initializer" for t in graph.initializer}
    defined.update({i.name: "a graph input" for i in graph.input})  # legacy: weights listed as inputs too
    for node in graph.node:
        for name in node.output:
            if not name:
                continue
            if name in defined:
                raise RejectedModel(
                    f"tensor '{name}' is produced by node '{_node_name(node)}' but is already {defined[name]}"
                )
            defined[name] = f"the output of node '{_node_name(node)}'"
    for o in graph.output:
        if o.name not in defined:
            raise RejectedModel(f"graph output '{o.name}' is never defined")


def _check_defined_and_acyclic(graph: onnx.GraphProto) -> None:
    """Every node input is defined somewhere; the nodes can be ordered (Kahn's algorithm), and
    are put in that order."""
    available = {t.name for t in graph.initializer} | {i.name for i in graph.input} | {""}
    producer = {name: k for k, node in enumerate(graph.node) for name in node.output if name}
    for node in graph.node:
        for name in node.input:
            if name not in available and name not in producer:
                raise RejectedModel(
                    f"tensor '{name}' used by node '{_node_name(node)}' is never defined "
                    "(a missing initializer or a dangling input)"
                )
    waiting = [len({producer[n] for n in node.input if n in producer and n not in available}) for node in graph.node]
    users: dict[int, list[int]] = {}
    for k, node in enumerate(graph.node):
        for p in {producer[n] for n in node.input if n in producer and n not in available}:
            users.setdefault(p, []).append(k)
    ready = [k for k, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        k = heapq.heappop(ready)  # the earliest ready node: a sorted graph keeps its order
        order.append(k)
        for u in users.get(k, []):
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    if len(order) < len(graph.node):
        stuck = next(k for k, w in enumerate(waiting) if w > 0)
        raise RejectedModel(f"the graph has a cycle through node '{_node_name(graph.node[stuck])}'")
    if order != sorted(order):  # ONNX wants nodes in topological order; runtimes sort them, so do we
        nodes = [graph.node[k] for k in order]
        sorted_nodes = [onnx.NodeProto() for _ in nodes]
        for new, old in zip(sorted_nodes, nodes):
            new.CopyFrom(old)
        del graph.node[:]
        graph.node.extend(sorted_nodes)


def _check_input_dims(graph: onnx.GraphProto) -> None:
    initializers = {t.name for t in graph.initializer}
    known = set(onnx.TensorProto.DataType.values())
    for inp in graph.input:
        if inp.name in initializers or not inp.type.HasField("tensor_type"):
            continue
        if inp.type.tensor_type.elem_type not in known:
            raise RejectedModel(f"graph input '{inp.name}' has an unknown element type ({inp.type.tensor_type.elem_type})")
        for d in inp.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and d.dim_value <= 0:
                shown = [x.dim_value if x.HasField("dim_value") else (x.dim_param or "?")
                         for x in inp.type.tensor_type.shape.dim]
                kind = "a zero" if d.dim_value == 0 else "a negative"
                raise RejectedModel(f"graph input '{inp.name}' declares {kind} dimension {shown}")
        dims = [d.dim_value for d in inp.type.tensor_type.shape.dim if d.HasField("dim_value")]
        if math.prod(dims) > MAX_ACTIVATION_ELEMENTS:
            raise RejectedModel(
                f"graph input '{inp.name}' declares {math.prod(dims)} values per input, "
                f"more than the {MAX_ACTIVATION_ELEMENTS} regionaudit accepts for one tensor; too large for an exact audit"
            )


def _check_arity(graph: onnx.GraphProto, opset: int) -> None:
    """Each standard node has the inputs and outputs its schema requires, none of them empty, and
    only attributes it defines: converters can then rely on what the op's definition promises."""
    single = onnx.defs.OpSchema.FormalParameterOption.Single
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        try:
            schema = onnx.defs.get_schema(node.op_type, opset, "")
        except onnx.defs.SchemaError:  # an unknown op: refused by the walker with the others
            continue
        what = f"node '{_node_name(node)}' ({node.op_type}, opset {opset})"
        for kind, given, lo, hi, formal in (
            ("inputs", list(node.input), schema.min_input, schema.max_input, schema.inputs),
            ("outputs", list(node.output), schema.min_output, schema.max_output, schema.outputs),
        ):
            if not lo <= len(given) <= hi:
                bound = f"{lo}" if lo == hi else f"{lo} to {hi}"
                raise RejectedModel(f"{what} has {len(given)} {kind}; the op takes {bound}")
            for k, (name, param) in enumerate(zip(given, formal)):
                if not name and param.option == single:
                    raise RejectedModel(f"{what}: its required {kind[:-1]} {k} ('{param.name}') is empty")
        unknown = [a.name for a in node.attribute if a.name not in schema.attributes]
        if unknown:  # an attribute of another opset (Squeeze's axes from 13): onnxruntime refuses it
            raise RejectedModel(f"{what} has attribute '{unknown[0]}', which the op does not take in this opset")


def checker_message(text: str) -> str:
    """The first problem onnx names, on one line (its text can list several and dump protos)."""
    text = re.sub(r"^\[ShapeInferenceError\] Inference error\(s\):\s*", "", text.strip())
    first = text.splitlines()[0] if text else "rejected by onnx"
    first = " ".join(first.split())
    return first if len(first) <= 300 else first[:300] + "..."
