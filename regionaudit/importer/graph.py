"""The graph walker: ONNX nodes in topological order, each turned into IR by its converter.

Only the nodes the analysed output depends on are visited. Nodes whose inputs are all constants
are folded; everything a converter cannot express is gathered and refused once, in one line.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from regionaudit import ir
from regionaudit.errors import RejectedModel
from regionaudit.importer import converters  # noqa: F401  (fills the registry)
from regionaudit.importer.fold import fold_node
from regionaudit.limits import MAX_ACTIVATION_ELEMENTS
from regionaudit.importer.passes import fold_flatten_transposes, merge_biases
from regionaudit.importer.refusal import CANNOT_CONVERT, SEVERAL_INPUTS, Problem, Refusal, classify
from regionaudit.importer.registry import CONVERTERS, Data, Unsupported, supported_ops
from regionaudit.importer.signature import Signature
from regionaudit.importer.trailing import strip_trailing


@dataclass
class Built:
    network: ir.Network
    op_types: list[str]  # original ONNX op type of each IR node
    analysed_tensor: str  # ONNX tensor the IR output equals (before a stripped Softmax)
    rounded_to: list[int] = field(default_factory=list)  # float types below 32 bits a Cast of data rounds to


@dataclass
class Builder:
    """What converters see: values by ONNX name, and `add` to append an IR node."""

    sig: Signature
    opset: int
    opsets: dict[str, int]
    uses: dict[str, int]
    values: dict = field(default_factory=dict)
    nodes: list = field(default_factory=list)
    op_types: list = field(default_factory=list)
    node: onnx.NodeProto | None = None
    node_name: str = ""
    names: set = field(default_factory=set)
    notes: list = field(default_factory=list)  # what a converter decided that the user should know
    rounded_to: list = field(default_factory=list)  # see Built

    # --- reading inputs -------------------------------------------------------------------
    def input(self, i: int):
        """Value of the node's input i: np.ndarray (constant), Data, or None when omitted."""
        if i >= len(self.node.input) or not self.node.input[i]:
            return None
        return self.values[self.node.input[i]]

    def const(self, i: int, what: str, float64: bool = True) -> np.ndarray | None:
        value = self.input(i)
        if isinstance(value, Data):
            raise Unsupported(f"{what} (input {i}) must be a constant, not computed from the input")
        if value is not None and float64 and value.dtype.kind not in "f":
            # the op computes in the data's float type; ONNX allows no integer (or string) operand here
            kind = "string" if value.dtype.kind in "OSU" else str(value.dtype)
            raise Unsupported(f"{what} (input {i}) holds {kind} values where the op needs the data's float type")
        if value is not None and float64 and value.dtype.kind == "f":
            value = value.astype(np.float64)
        return value

    def data(self, i: int) -> Data:
        value = self.input(i)
        if not isinstance(value, Data):
            raise Unsupported(f"input {i} is expected to depend on the graph input")
        return value

    def used(self, output_index: int) -> bool:
        out = self.node.output
        return output_index < len(out) and bool(out[output_index]) and self.uses.get(out[output_index], 0) > 0

    # --- writing IR -------------------------------------------------------------------------
    def add(self, cls, inputs: list[Data], shape=None, suffix: str | None = None, **fields) -> Data:
        """Append an IR node; its output shape is checked (or found) by running it on zeros."""
        name = self._unique(self.node_name if suffix is None else f"{self.node_name}/{suffix}")
        fields = {k: torch.from_numpy(np.array(v, dtype=np.float64)) if isinstance(v, (np.ndarray, np.floating)) else v
                  for k, v in fields.items()}
        node = cls(name=name, inputs=tuple(d.id for d in inputs), shape=tuple(shape or ()), **fields)
        if shape is not None and math.prod(shape) > MAX_ACTIVATION_ELEMENTS:
            raise Unsupported(f"output of shape {tuple(shape)} is too large")
        zeros = [torch.zeros((1, *d.shape), dtype=torch.float64) for d in inputs]
        try:
            out = tuple(node.forward(zeros).shape[1:])
        except (RuntimeError, ValueError, IndexError) as exc:
            raise Unsupported(f"shapes do not fit ({' '.join(str(exc).split())[:120]})") from None
        if shape is not None and out != tuple(shape):
            raise Unsupported(f"computed shape {out} differs from the expected {tuple(shape)}")
        if math.prod(out) > MAX_ACTIVATION_ELEMENTS:
            raise Unsupported(f"output of shape {out} is too large")
        node.shape = out
        self.names.add(name)
        self.nodes.append(node)
        self.op_types.append(self.node.op_type)
        return Data(len(self.nodes) - 1, out)

    def _unique(self, name: str) -> str:
        k, candidate = 1, name
        while candidate in self.names:
            k += 1
            candidate = f"{name}#{k}"
        return candidate


def display_name(node: onnx.NodeProto) -> str:
    """The node's name, or a stable one made of its op type and first output."""
    return node.name or f"{node.op_type}_{node.output[0] if node.output else ''}"


def build_network(model: onnx.ModelProto, sig: Signature, opset: int) -> Built:
    graph = model.graph
    producers = _producers(graph)
    notes = list(sig.notes)
    tensor, note = strip_trailing(producers, sig.output_name, display_name)
    if note:
        notes.append(note)
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    order = _needed_nodes(producers, tensor, constants, {sig.input_name, *sig.extra_inputs})
    uses: dict[str, int] = {tensor: 1}
    for node in order:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1

    opsets = {o.domain or "": o.version for o in model.opset_import}
    b = Builder(sig, opset, opsets, uses)
    b.values.update(constants)
    b.values[sig.input_name] = _input(b, sig)
    problems: list[Problem] = []
    if sig.extra_inputs:  # judged with the rest: nodes reading them are data-dependent
        names = [i.name for i in graph.input if i.name in {sig.input_name, *sig.extra_inputs}]
        problems.append(Problem(SEVERAL_INPUTS, "graph", graph.name or "main", (
            f"the graph has {len(names)} inputs ({', '.join(repr(n) for n in names)}); "
            "regionaudit analyses single-input models")))
        for name in sig.extra_inputs:
            b.values[name] = _POISON
    for node in order:
        _visit(b, node, problems)
    if problems:
        raise Refusal(problems, b.opset, supported_ops())
    notes += b.notes
    out = b.values[tensor]
    if not isinstance(out, Data):
        raise RejectedModel(f"output '{sig.output_name}' does not depend on the graph input")
    output = merge_biases(b.nodes, b.op_types, out.id)
    fold_flatten_transposes(b.nodes, b.op_types, output)
    nodes, op_types, output = _compact(b.nodes, b.op_types, output)
    net = ir.Network(
        nodes=nodes,
        input_shape=sig.input_shape,
        graph_input_shape=sig.graph_input_shape,
        output=output,
        input_name=sig.input_name,
        output_name=sig.output_name,
        notes=notes,
    )
    return Built(net, op_types, tensor, b.rounded_to)


def _input(b: Builder, sig: Signature) -> Data:
    b.nodes.append(ir.Input(name=sig.input_name, inputs=(), shape=sig.graph_input_shape))
    b.op_types.append("Input")
    b.names.add(sig.input_name)
    return Data(0, sig.graph_input_shape)


def _visit(b: Builder, node: onnx.NodeProto, problems: list[Problem]) -> None:
    b.node, b.node_name = node, display_name(node)
    inputs = [b.values.get(n, _POISON) if n else None for n in node.input]
    on_data = [isinstance(x, Data) or x is _POISON for x in inputs]
    if any(on_data):
        refused = classify(node, on_data)
        if refused is not None:
            problems.append(Problem(refused[0], node.op_type, b.node_name, refused[1]))
            _poison(b, node)
            return
        if any(x is _POISON for x in inputs):  # downstream of a refused node, fine by itself
            _poison(b, node)
            return
    try:
        if not any(on_data):
            results = fold_node(node, inputs, b.opsets)
            for name, value in zip(node.output, results):
                if name:
                    b.values[name] = value
            return
        result = CONVERTERS[node.op_type](node, b)
        for i, name in enumerate(node.output[1:], start=1):
            if b.used(i) and name not in b.values:
                raise Unsupported(f"its output {i} ('{name}') is used, which regionaudit cannot follow")
        b.values[node.output[0]] = result
    except Unsupported as exc:
        problems.append(Problem(exc.kind, node.op_type, b.node_name, str(exc)))
        _poison(b, node)
    except (ValueError, TypeError, IndexError, KeyError) as exc:  # malformed attributes or inputs
        problems.append(Problem(CANNOT_CONVERT, node.op_type, b.node_name, " ".join(str(exc).split())[:120]))
        _poison(b, node)


_POISON = object()


def _poison(b: Builder, node: onnx.NodeProto) -> None:
    for name in node.output:
        if name:
            b.values[name] = _POISON


def _producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    producers: dict[str, onnx.NodeProto] = {}
    for node in graph.node:
        for name in node.output:
            if name in producers:
                raise RejectedModel(f"tensor '{name}' is produced by more than one node")
            if name:
                producers[name] = node
    return producers


def _needed_nodes(producers, tensor: str, constants: dict, input_names: set) -> list[onnx.NodeProto]:
    """Nodes `tensor` depends on, in topological order (iterative depth-first post-order)."""
    order: list[onnx.NodeProto] = []
    state: dict[int, int] = {}  # id(node) -> 1 on the current path, 2 done
    stack: list[tuple[bool, onnx.NodeProto | None, str]] = [(False, None, tensor)]
    while stack:
        finished, parent, name = stack.pop()
        if finished:  # all of `parent`'s inputs are placed
            state[id(parent)] = 2
            order.append(parent)
            continue
        if name in constants or name in input_names:
            continue
        node = producers.get(name)
        if node is None:
            user = f" used by node '{display_name(parent)}'" if parent is not None else ""
            raise RejectedModel(f"tensor '{name}'{user} is never defined")
        s = state.get(id(node))
        if s == 2:
            continue
        if s == 1:
            raise RejectedModel(f"the graph has a cycle through node '{display_name(node)}'")
        state[id(node)] = 1
        stack.append((True, node, ""))
        stack.extend((False, node, inp) for inp in reversed(node.input) if inp)
    return order


def _compact(nodes: list, op_types: list, output: int):
    """Drop IR nodes the output does not read (e.g. a branch only its Shape was taken of), and
    number the others in the order the analyses run them (`_schedule`)."""
    keep = {0, output}
    for i in range(output, -1, -1):
        if i in keep:
            keep.update(nodes[i].inputs)
    order = _schedule(nodes, sorted(keep))
    new_id = {old: new for new, old in enumerate(order)}
    kept = []
    for old in order:
        node = nodes[old]
        node.inputs = tuple(new_id[j] for j in node.inputs)
        kept.append(node)
    return kept, [op_types[i] for i in order], new_id[output]


def _schedule(nodes: list, ids: list[int]) -> list[int]:
    """A topological order of `ids`: a node that is not a kink node and does not enlarge its
    input (a convolution to fewer values, a sum, a reshape) runs as soon as its inputs are there,
    the others in the graph's order. The analyses insert knots at kink nodes, so a node run
    before the next one runs at fewer knots, and an input it alone still reads is not carried
    through that insertion (a ResNet's strided shortcut convolution, which exporters write after
    the block's other branch). Only such nodes move ahead: the others, kink nodes included, keep
    their order."""
    readers: dict[int, list[int]] = {i: [] for i in ids}
    waiting = {}
    for i in ids:
        deps = set(nodes[i].inputs)
        waiting[i] = len(deps)
        for j in deps:
            readers[j].append(i)

    def key(i: int) -> tuple[int, int]:
        node = nodes[i]
        size = math.prod(node.shape)
        early = not node.is_kink and bool(node.inputs) and size <= max(math.prod(nodes[j].shape) for j in node.inputs)
        return (0 if early else 1, i)

    ready = [key(i) for i in ids if waiting[i] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, i = heapq.heappop(ready)
        order.append(i)
        for r in readers[i]:
            waiting[r] -= 1
            if waiting[r] == 0:
                heapq.heappush(ready, key(r))
    return order
