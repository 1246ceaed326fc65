"""The converter registry: one converter per op type, and no silent replacement."""

from __future__ import annotations

import pytest

from regionaudit.importer import registry
from regionaudit.importer.registry import CONVERTERS, DuplicateConverter, converter


def test_second_converter_for_an_op_is_refused(monkeypatch):
    monkeypatch.setattr(registry, "CONVERTERS", dict(CONVERTERS))
    before = registry.CONVERTERS["Relu"]
    with pytest.raises(DuplicateConverter, match="Relu already has a converter"):

        @converter("Relu")
        def relu_again(node, ctx):  # pragma: no cover - never registered
            return None

    assert registry.CONVERTERS["Relu"] is before


def test_a_refused_registration_registers_none_of_its_ops(monkeypatch):
    monkeypatch.setattr(registry, "CONVERTERS", dict(CONVERTERS))
    assert "NotAnOnnxOp" not in registry.CONVERTERS
    with pytest.raises(DuplicateConverter):

        @converter("NotAnOnnxOp", "Conv")
        def both(node, ctx):  # pragma: no cover - never registered
            return None

    assert "NotAnOnnxOp" not in registry.CONVERTERS
