"""The stages import only downward in the data flow (ARCHITECTURE.md): a module may import its own
layer or a lower one, never a higher one, so every stage can be read and tested without those after it."""

from __future__ import annotations

import ast
from pathlib import Path

import regionaudit

# lowest first; a module belongs to the longest name below that prefixes it; a new module must be placed here
LAYERS = [
    ["regionaudit.errors", "regionaudit.version", "regionaudit.progress", "regionaudit.metrics", "regionaudit.limits",
     "regionaudit.heap"],
    ["regionaudit.files", "regionaudit.options", "regionaudit.conv", "regionaudit.ir"],
    ["regionaudit.importer"],
    ["regionaudit.analysis", "regionaudit.probes", "regionaudit.estimate", "regionaudit.distance_method",
     "regionaudit.environment", "regionaudit.capacity", "regionaudit.reinit", "regionaudit.reference",
     "regionaudit.planes", "regionaudit.slice_result"],
    ["regionaudit.result"],
    ["regionaudit.assemble", "regionaudit.frame", "regionaudit.slice_audit"],
    ["regionaudit.api"],
    ["regionaudit.gates"],
    ["regionaudit.report"],
    ["regionaudit.outputs"],
    ["regionaudit.commands"],
    ["regionaudit.cli", "regionaudit.__main__", "regionaudit", "regionaudit.bench"],
]
PACKAGE = Path(regionaudit.__file__).parent


def layer_of(module: str) -> int:
    best, layer = "", None
    for i, names in enumerate(LAYERS):
        for name in names:
            prefix = name != "regionaudit" and module.startswith(name + ".")  # the package itself: its __init__ only
            if (module == name or prefix) and len(name) > len(best):
                best, layer = name, i
    assert layer is not None, f"{module} is in no layer of the architecture"
    return layer


def imports(path: Path, module: str) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from regionaudit import x` imports the submodule x when there is one
            if node.module == "regionaudit":
                out += [f"regionaudit.{a.name}" for a in node.names]
            else:
                out.append(node.module)
    return [m for m in out if m == "regionaudit" or m.startswith("regionaudit.")]


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        yield path, ".".join(["regionaudit", *parts])


def test_no_module_imports_a_later_stage():
    upward = []
    for path, module in modules():
        for imported in imports(path, module):
            if imported == "regionaudit.__version__":
                continue
            if layer_of(imported) > layer_of(module):
                upward.append(f"{module} imports {imported}")
    assert upward == []


def test_the_check_sees_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from regionaudit.report.html import render_html\n")
    [imported] = imports(bad, "regionaudit.result")
    assert layer_of(imported) > layer_of("regionaudit.result")
