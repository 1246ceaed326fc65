"""The README's supported-ops table is the converter registry's: regenerate it when they differ."""

from pathlib import Path

from regionaudit.importer.optable import BEGIN, END, block, replace_block
from regionaudit.importer.registry import CONVERTERS, KINK_OPS

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_table_equals_the_registry():
    text = README.read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    table = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert table == block(), "run: python -m regionaudit.importer.optable README.md"


def test_table_lists_every_converter_once_with_its_kind():
    rows = [r for r in block().splitlines() if r.startswith("| ") and not r.startswith("| ONNX op")]
    ops = [r.split("|")[1].strip() for r in rows]
    assert sorted(ops) == sorted(CONVERTERS)
    for r, op in zip(rows, ops):
        assert ("kink" in r) == (op in KINK_OPS)
    assert {"Clip", "Max", "ReduceMin", "Abs", "HardSigmoid", "MaxPool", "Relu"} <= KINK_OPS
    assert {"ConvTranspose", "Resize", "Split", "Einsum", "Where", "Mean"} <= set(CONVERTERS) - KINK_OPS


def test_replace_block_rewrites_only_the_table():
    stale = f"before\n{BEGIN}\n| old |\n{END}\nafter\n"
    assert replace_block(stale) == f"before\n{block()}\nafter\n"
