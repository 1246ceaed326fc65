"""Refusals that name every reason: each offending node, grouped by reason class.

A node is classified by its op type and by which of its inputs depend on the graph input, so a
node downstream of one that has no converter is still judged (a Tanh after an unknown op is
named too): adding one converter never only reveals the next refusal. The message stays one line
(a few nodes per class, then `+k more`); `Refusal.to_dict()` holds every node and reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import onnx

from regionaudit.errors import RejectedModel, one_line
from regionaudit.importer.registry import CONVERTERS, FLOAT_TYPES, PRODUCT, attr
from regionaudit.importer.trailing import SQUASHERS

SEVERAL_INPUTS = "several inputs"
NOT_PL = "not piecewise linear"
DISCONTINUOUS = "discontinuous"
CONTROL_FLOW = "control flow"
NO_CONVERTER = "no converter"
CANNOT_CONVERT = "cannot convert"
# the order classes are listed in: what no converter can ever fix first
CLASSES = (SEVERAL_INPUTS, NOT_PL, DISCONTINUOUS, PRODUCT, CONTROL_FLOW, NO_CONVERTER, CANNOT_CONVERT)
SHOWN_PER_CLASS = 4

NOT_PIECEWISE_LINEAR_OPS = {
    "Tanh", "Exp", "Log", "Erf", "Gelu", "Elu", "Selu", "Celu", "Softplus", "Softsign", "Mish",
    "Sqrt", "Pow", "Reciprocal", "Sin", "Cos", "Tan", "Atan", "Asin", "Acos", "Sinh", "Cosh", "Asinh",
    "Acosh", "Atanh", "LpNormalization", "LRN", "InstanceNormalization", "LayerNormalization",
    "GroupNormalization", "RMSNormalization", "MeanVarianceNormalization", "HardSwish", "Hardmax",
    "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceProd", "ReduceSumSquare",
    "Attention", "Swish", "Softmax", "LogSoftmax", "Sigmoid",
} | SQUASHERS
DISCONTINUOUS_OPS = {
    "Sign", "Floor", "Ceil", "Round", "Greater", "Less", "Equal", "GreaterOrEqual", "LessOrEqual",
    "Not", "And", "Or", "Xor", "ArgMax", "ArgMin", "Mod", "IsNaN", "IsInf", "BitShift", "NonZero",
    "ThresholdedRelu", "QuantizeLinear", "DynamicQuantizeLinear", "OneHot", "Unique", "BitwiseAnd",
    "BitwiseOr", "BitwiseXor", "BitwiseNot",
}
CONTROL_FLOW_OPS = {"If", "Loop", "Scan", "SequenceMap"}
# ops that multiply or divide their operands: data on two sides is a product of data tensors
PRODUCT_OPS = {"Mul", "Div", "MatMul", "Gemm", "Einsum", "Conv", "ConvTranspose", "PRelu", "BatchNormalization",
               "MatMulInteger", "QLinearMatMul", "ConvInteger"}
BIASED_OPS = {"Gemm", "Conv", "ConvTranspose"}  # of these, only the first two inputs are multiplied
# ops whose index / condition operand (by position) on data is a discontinuity
DATA_INDEX = {"Gather": 1, "GatherElements": 1, "GatherND": 1, "Where": 0, "ScatterElements": 1,
              "ScatterND": 1, "Compress": 1}


@dataclass(frozen=True)
class Problem:
    kind: str  # one of CLASSES
    op_type: str
    node: str
    reason: str


def classify(node: onnx.NodeProto, on_data: list[bool]) -> tuple[str, str] | None:
    """(class, reason) for a node that can never be exact IR with these inputs on data; None when
    a converter may take it. `on_data[i]`: input i depends on the graph input."""
    op = node.op_type
    if node.domain not in ("", "ai.onnx"):
        return NO_CONVERTER, f"custom domain '{node.domain}' is not supported"
    if op in CONTROL_FLOW_OPS:
        return CONTROL_FLOW, "control flow depends on the input"
    if op in SQUASHERS:
        return NOT_PL, "only a final Softmax, LogSoftmax, Sigmoid or Tanh is stripped"
    if op in NOT_PIECEWISE_LINEAR_OPS:
        return NOT_PL, "not piecewise linear"
    if op in DISCONTINUOUS_OPS:
        return DISCONTINUOUS, "discontinuous in its input"
    if op == "Cast" and attr(node, "to") not in FLOAT_TYPES:
        return DISCONTINUOUS, "cast of data to a non-float type rounds it"
    if op in DATA_INDEX and DATA_INDEX[op] < len(on_data) and on_data[DATA_INDEX[op]]:
        return DISCONTINUOUS, f"its {'condition is' if op == 'Where' else 'indices are'} computed from the input"
    if op == "Div" and len(on_data) > 1 and on_data[1]:
        return PRODUCT, "division by a data tensor"
    if op in PRODUCT_OPS and sum(on_data[:2] if op in BIASED_OPS else on_data) >= 2:
        return PRODUCT, "product of two data tensors"
    if op not in CONVERTERS:
        return NO_CONVERTER, "no converter for this op on data tensors (it is only evaluated where all its inputs are constant)"
    return None


class Refusal(RejectedModel):
    """A graph refused for one or more reasons, every offending node named."""

    def __init__(self, problems: list[Problem], opset: int, supported: list[str]):
        self.problems = list(problems)
        self.opset = opset
        self.supported = supported
        super().__init__(self._line())

    def by_class(self) -> dict[str, list[Problem]]:
        groups: dict[str, list[Problem]] = {}
        for kind in CLASSES:
            members = [p for p in self.problems if p.kind == kind]
            if members:
                groups[kind] = members
        for p in self.problems:  # a class not in CLASSES still shows
            groups.setdefault(p.kind, [q for q in self.problems if q.kind == p.kind])
        return groups

    def _line(self) -> str:
        parts = []
        for kind, members in self.by_class().items():
            by_reason: dict[str, list[str]] = {}  # nodes sharing a reason are listed before it, once
            for p in members[:SHOWN_PER_CLASS]:
                by_reason.setdefault(p.reason, []).append(f"{p.op_type} '{p.node}'")
            shown = [", ".join(nodes) + ("" if reason == _DEFAULT.get(kind) else f" ({reason})")
                     for reason, nodes in by_reason.items()]
            more = len(members) - SHOWN_PER_CLASS
            parts.append(f"{kind}: {'; '.join(shown)}" + (f" +{more} more" if more > 0 else ""))
        text = f"refused (opset {self.opset}): " + "; ".join(parts)
        if any(p.kind == NO_CONVERTER for p in self.problems):
            text += f"; supported ops: {', '.join(self.supported)}"
        return text

    def to_dict(self) -> dict:
        """Every node and reason, grouped by class (what `inspect --json` writes)."""
        return {
            "message": one_line(str(self)),  # the line stderr shows
            "opset": self.opset,
            "reasons": {kind: [asdict(p) for p in members] for kind, members in self.by_class().items()},
        }


# the reason every member of a class shares, left out of the one-line message
_DEFAULT = {NOT_PL: "not piecewise linear", DISCONTINUOUS: "discontinuous in its input",
            NO_CONVERTER: "no converter for this op on data tensors (it is only evaluated where all its inputs are constant)",
            CONTROL_FLOW: "control flow depends on the input"}
