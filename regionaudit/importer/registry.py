"""The converter registry: one small function per ONNX op type, found by the op type alone.

A converter reads one ONNX node through the builder (`ctx`) and returns the value of its first
output: a numpy array when the result is constant, or the `Data` handle of the IR node it added.
Opset differences (attribute vs input) are handled inside each converter, never by the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import onnx

CONVERTERS: dict[str, Callable] = {}
KINK_OPS: set[str] = set()  # ops whose converters add kink nodes (the README's table says so)

FLOAT_TYPES = {
    onnx.TensorProto.FLOAT,
    onnx.TensorProto.DOUBLE,
    onnx.TensorProto.FLOAT16,
    onnx.TensorProto.BFLOAT16,
}


@dataclass(frozen=True)
class Data:
    """A tensor that depends on the graph input: the IR node computing it and its shape."""

    id: int
    shape: tuple[int, ...]


PRODUCT = "product or quotient of two data-dependent tensors"


class Unsupported(Exception):
    """A node regionaudit cannot turn into exact IR; gathered by the walker, refused at the end.

    `kind` is the reason class of `refusal.py` (default: the converter cannot express this use).
    """

    def __init__(self, message: str, kind: str = "cannot convert"):
        super().__init__(message)
        self.kind = kind


class DuplicateConverter(Exception):
    """Two converters registered for one op type: a mistake in regionaudit itself, never the user's."""


def converter(*op_types: str, kink: bool = False):
    """Register the decorated function as the converter of each op type named; `kink` when it
    adds kink nodes (where regions come from) rather than affine ones. An op type that already has
    a converter is refused, so no converter silently replaces another."""

    def register(fn):
        for op in op_types:
            if op in CONVERTERS:
                old = CONVERTERS[op]
                raise DuplicateConverter(
                    f"{op} already has a converter ({old.__module__}.{old.__name__}); "
                    f"{fn.__module__}.{fn.__name__} would replace it"
                )
        for op in op_types:
            CONVERTERS[op] = fn
            if kink:
                KINK_OPS.add(op)
        return fn

    return register


def attr(node: onnx.NodeProto, name: str, default=None):
    """An attribute's value (strings decoded), or `default` when the node does not set it."""
    for a in node.attribute:
        if a.name == name:
            value = onnx.helper.get_attribute_value(a)
            return value.decode() if isinstance(value, bytes) else value
    return default


def supported_ops() -> list[str]:
    return sorted(CONVERTERS)
