"""The layer IR: a ReLU network as a list of nodes in topological order.

Every tensor carries one leading *probe* axis P in front of the shape the ONNX graph sees at batch
size 1 (`Node.shape`). Evaluating many probes is then one batched call per node, and ONNX shape
arithmetic (Reshape targets, Concat axes, Transpose perms) applies unchanged after that axis.

Affine nodes evaluate `f(x)` (`forward`) and their linear part `f(x) - f(0)` (`linear`); the
linear part is what tangents go through. Kink nodes are where activation regions come from:
elementwise units (`LeakyRelu`, `Clip`: a subclass of `UnitKink`, whose breakpoints are where an
`offsets` value changes sign) and windows (`MaxPool`, and `WindowMax` for Max/Min of tensors and
ReduceMax/ReduceMin: a kink wherever a window's argmax changes).
"""

from regionaudit.ir.affine import (
    AvgPool,
    Concat,
    Conv,
    ConvTranspose,
    Einsum,
    GlobalAvgPool,
    MatMul,
    Pad,
    Resample,
    Reshape,
    Scale,
    Stack,
    Sum,
    Take,
    Transpose,
)
from regionaudit.ir.network import Network
from regionaudit.ir.node import Input, Node
from regionaudit.ir.units import Clip, LeakyRelu, UnitKink
from regionaudit.ir.windows import MaxPool, WindowMax

__all__ = [
    "AvgPool", "Clip", "Concat", "Conv", "ConvTranspose", "Einsum", "GlobalAvgPool", "Input", "LeakyRelu",
    "MatMul", "MaxPool", "Network", "Node", "Pad", "Resample", "Reshape", "Scale", "Stack", "Sum", "Take",
    "Transpose", "UnitKink", "WindowMax",
]
