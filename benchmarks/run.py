"""Speed and memory of regionaudit, as ratios measured in one run; see the README, "Benchmarks".

    python benchmarks/run.py [--quick | --gpu | --onnx FILE ...] [--models NAME ...] [--json OUT]

The same as `python -m regionaudit.bench`. Rows from the other benchmark scripts in this folder
that export `rows(args, devices, bench) -> list[dict]` are added to the table (slices, for one).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from regionaudit.bench.run import main

HERE = Path(__file__).resolve().parent


def extra_row_makers() -> list:
    makers = []
    for path in sorted(HERE.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if hasattr(module, "rows"):
            makers.append(module.rows)
    return makers


if __name__ == "__main__":
    main(extra_rows=extra_row_makers())
