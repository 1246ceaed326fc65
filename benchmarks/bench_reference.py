"""Cost of the reference frame as a ratio of the audit it belongs to, measured in one run.

    python benchmarks/bench_reference.py [MODEL.onnx DATA.npy] [--init-reference 2] [--repeat 3]

Times the same audit with `--init-reference K` and with 0, and reports the audit's own `reference_s`
over the rest of its analysis (density, distance). Ratios only: wall-clock numbers on shared machines
say little on their own.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from regionaudit.api import audit

HERE = Path(__file__).resolve().parent.parent / "sample_models"


def best_of(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default=str(HERE / "digits_cnn.onnx"))
    ap.add_argument("data", nargs="?", default=str(HERE / "digits_test.npy"))
    ap.add_argument("--init-reference", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with_ref, r = best_of(lambda: audit(args.model, data=args.data, init_reference=args.init_reference), args.repeat)
    without, r0 = best_of(lambda: audit(args.model, data=args.data, init_reference=0), args.repeat)
    analysis = r.timing["density_s"] + r.timing["distance_s"]
    print(f"{Path(args.model).name}: {len(r.density.segments)} segments, {len(r.distance.points)} points, "
          f"--init-reference {args.init_reference}")
    print(f"  reference frame / analysis (same run): {r.timing['reference_s'] / analysis:.2f}")
    print(f"  whole audit with / without the reference: {with_ref / without:.2f}")
    assert [s.regions for s in r.density.segments] == [s.regions for s in r0.density.segments]


if __name__ == "__main__":
    main()
