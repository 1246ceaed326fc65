"""The README's table of supported ONNX ops, made from the converter registry.

`python -m regionaudit.importer.optable README.md` rewrites the table between its markers; a test
fails when the README and the registry differ.
"""

from __future__ import annotations

import sys
from pathlib import Path

from regionaudit.files import write_text
from regionaudit.importer import converters  # noqa: F401  (fills the registry)
from regionaudit.importer.registry import CONVERTERS, KINK_OPS

BEGIN = "<!-- supported-ops: made by `python -m regionaudit.importer.optable README.md`; do not edit -->"
END = "<!-- end of supported-ops -->"


def markdown() -> str:
    """One row per op type with a converter: its kind (kink or affine) and converter module."""
    rows = ["| ONNX op | kind | converter |", "|---|---|---|"]
    for op in sorted(CONVERTERS, key=lambda o: (o not in KINK_OPS, o)):
        kind = "kink (regions)" if op in KINK_OPS else "affine"
        module = CONVERTERS[op].__module__.rsplit(".", 1)[-1]
        rows.append(f"| {op} | {kind} | `{module}` |")
    return "\n".join(rows)


def block() -> str:
    return f"{BEGIN}\n{markdown()}\n{END}"


def replace_block(text: str) -> str:
    """`text` with the table between the markers made anew (markers must be present)."""
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + block() + text[end:]


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else Path("README.md")
    text = path.read_text(encoding="utf-8")
    write_text(path, replace_block(text))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
