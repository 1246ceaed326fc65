"""Structural checks of a parsed graph, before any converter or runtime looks at it.

A hostile or broken graph is refused here with one line naming the problem: names defined twice,
tensors never defined, cycles, control flow, absurd declared dims, too many nodes; then
onnx's strict type and shape inference catches the rest (weights of the wrong type, declared
shapes the weights contradict).
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter

import onnx

from regionaudit.errors import RejectedModel
from regionaudit.limits import MAX_ACTIVATION_ELEMENTS, MAX_NODES

CONTROL_FLOW = {"If", "Loop", "Scan", "SequenceMap"}


def check_graph(model: onnx.ModelProto) -> None:
    """The structure; `check_types` (run once the graph's signature is known to be usable) the types."""
    graph = model.graph
    _count_nodes(graph)
    _check_names(graph)
    _check_control_flow(graph)
    _check_defined_and_acyclic(graph)
    _check_input_dims(graph)


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
    """Every tensor is defined once: by a graph input, an initializer or one node output."""
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


def _check_control_flow(graph: onnx.GraphProto) -> None:
    found = [f"{n.op_type} '{_node_name(n)}'" for n in graph.node
             if n.op_type in CONTROL_FLOW or any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                                                 for a in n.attribute)]
    if found:
        raise RejectedModel(
            f"control flow is not supported: {', '.join(found[:5])}{' ...' if len(found) > 5 else ''} "
            "(regionaudit analyses feed-forward graphs; export without If/Loop/Scan)"
        )


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
    for inp in graph.input:
        if inp.name in initializers or not inp.type.HasField("tensor_type"):
            continue
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


def check_types(model: onnx.ModelProto, file_name: str) -> None:
    """onnx's strict type and shape inference over the whole graph (onnx.checker itself also
    refuses graph outputs declared without a shape, which exporters write and runtimes accept)."""
    if model.ir_version > onnx.IR_VERSION:
        raise RejectedModel(f"{file_name}: IR version {model.ir_version} is newer than the onnx package reads ({onnx.IR_VERSION})")
    ir_version = model.ir_version
    model.ir_version = max(ir_version, 4)  # before IR 4 initializers had to be inputs too; runtimes never cared
    try:
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as exc:  # InferenceError, ValidationError, and plain ValueError/TypeError from its bindings
        raise RejectedModel(f"{file_name}: invalid ONNX model: {checker_message(str(exc))}") from None
    finally:
        model.ir_version = ir_version


def checker_message(text: str) -> str:
    """The first problem onnx.checker names, on one line (its text lists several and dumps protos)."""
    text = re.sub(r"^\[ShapeInferenceError\] Inference error\(s\):\s*", "", text.strip())
    first = text.splitlines()[0] if text else "rejected by onnx.checker"
    first = " ".join(first.split())
    return first if len(first) <= 300 else first[:300] + "..."
