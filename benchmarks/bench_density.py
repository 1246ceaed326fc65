"""Density speed as ratios measured in one run: layerwise knot insertion vs the reference walk,
float64 vs float32, and CPU vs CUDA when a GPU is present.

    python benchmarks/bench_density.py [MODEL.onnx DATA.npy] [--segments 20] [--repeat 3]

Ratios, not wall-clock thresholds: the machines are noisy, so only numbers taken side by side in
the same process are compared. Region counts must agree exactly between the methods.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from regionaudit.analysis.density import trace_segments
from regionaudit.analysis.walk import walk_segment
from regionaudit.importer import import_model
from regionaudit.probes import as_rows, random_pairs

HERE = Path(__file__).resolve().parent.parent / "sample_models"


def best_of(fn, repeat: int) -> tuple[float, object]:
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
    ap.add_argument("--segments", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    net = import_model(args.model).network
    rows = as_rows(np.load(args.data, allow_pickle=False).astype(np.float64), net.input_shape, "data")
    i, j = random_pairs(len(rows), args.segments, seed=0)
    a, b = torch.from_numpy(rows[i]), torch.from_numpy(rows[j])

    t_layer, traces = best_of(lambda: trace_segments(net, a, b), args.repeat)
    t_walk, walked = best_of(lambda: [walk_segment(net, a[k], b[k]) for k in range(len(a))], 1)
    same = [tr.regions for tr in traces] == [w.regions for w in walked]
    regions = sum(tr.regions for tr in traces)
    print(f"model {args.model}: {len(a)} segments, {regions} regions in all, counts agree: {same}")
    print(f"layerwise {t_layer:.3f} s, reference walk {t_walk:.3f} s: walk / layerwise = {t_walk / t_layer:.1f}x")

    net32 = import_model(args.model, dtype=torch.float32).network
    t32, traces32 = best_of(lambda: trace_segments(net32, a, b), args.repeat)
    print(
        f"float64 {t_layer:.3f} s, float32 {t32:.3f} s: ratio {t_layer / t32:.2f}x; "
        f"float32 region counts equal float64's on {sum(x.regions == y.regions for x, y in zip(traces, traces32))}/{len(a)} segments"
    )
    if torch.cuda.is_available():
        netc = import_model(args.model, device="cuda").network
        tc, tracesc = best_of(lambda: trace_segments(netc, a, b), args.repeat)
        print(f"CPU {t_layer:.3f} s, CUDA {tc:.3f} s: CPU / CUDA = {t_layer / tc:.1f}x; "
              f"counts agree: {[x.regions for x in traces] == [y.regions for y in tracesc]}")
    else:
        print("no CUDA device: CPU vs GPU not measured")


if __name__ == "__main__":
    main()
