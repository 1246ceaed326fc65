"""2-D slice speed as ratios measured in one run: the exact partition against a dense grid of
forward passes over the same square (1000 x 1000 points by default).

    python benchmarks/bench_slice.py [--grid 1000] [--max-grid-points 250000] [--models NAME ...]

For each model: regions, vertices processed, seconds, regions per second; the grid's seconds
(measured on up to --max-grid-points points and scaled to the full grid when the grid is larger,
marked "~"), how many distinct activation patterns the grid saw, and whether the partition has
every one of them. Seconds are CPU time of this process (one torch thread unless OMP_NUM_THREADS
says otherwise), so that a machine shared with other jobs still gives comparable ratios; ratios,
not wall-clock thresholds: only numbers taken side by side count.
`slice_rows()` returns the rows as dicts; `rows(args, devices, bench)` adds them, in the keys of
the benchmark command's table, to `python benchmarks/run.py` (spirals_mlp on a 200 x 200 grid with
--quick; none with --gpu, which times CUDA).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from regionaudit import ir
from regionaudit.analysis.slices import Plane, _pack, partition_plane
from regionaudit.importer import import_model
from regionaudit.planes import build_plane
from regionaudit.probes import as_rows, synthetic_rows

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_models"
REALMODELS = ROOT.parent / "shared" / "realmodels"


SAMPLE = [
    ("spirals_mlp", "spirals_test.npy"),
    ("digits_mlp", "digits_test_flat.npy"),
    ("digits_cnn", "digits_test.npy"),
    ("digits_resnet", "digits_test.npy"),
]


def wide_mlp(seed: int = 0, in_dim: int = 784, width: int = 1024, depth: int = 3, n_out: int = 10) -> ir.Network:
    """A He-initialised 784-1024x3-10 MLP built directly in the IR."""
    g = torch.Generator().manual_seed(seed)
    nodes: list[ir.Node] = [ir.Input("input", (), (in_dim,))]
    prev = in_dim
    for k in range(depth):
        w = torch.randn(prev, width, generator=g, dtype=torch.float64) * math.sqrt(2 / prev)
        nodes.append(ir.MatMul(f"fc{k}", (len(nodes) - 1,), (width,), weight=w, bias=torch.zeros(width, dtype=torch.float64)))
        nodes.append(ir.LeakyRelu(f"relu{k}", (len(nodes) - 1,), (width,), slope=torch.tensor(0.0, dtype=torch.float64)))
        prev = width
    w = torch.randn(prev, n_out, generator=g, dtype=torch.float64) * math.sqrt(2 / prev)
    nodes.append(ir.MatMul("out", (len(nodes) - 1,), (n_out,), weight=w, bias=torch.zeros(n_out, dtype=torch.float64)))
    return ir.Network(nodes=nodes, input_shape=(in_dim,), graph_input_shape=(in_dim,), output=len(nodes) - 1)


def cases(names: list[str] | None) -> list[tuple[str, ir.Network, Plane]]:
    """(name, network, plane) for each benchmark model, planes as an audit chooses them."""
    out = []
    for name, data in SAMPLE:
        if names and name not in names:
            continue
        net = import_model(str(SAMPLES / f"{name}.onnx")).network
        rows = as_rows(np.load(SAMPLES / data, allow_pickle=False).astype(np.float64), net.input_shape, "data")
        out.append((name, net, build_plane(net, rows, "data", 0, 1.25, None, None).plane))
    if not names or "mlp_784_1024x3" in names:
        net = wide_mlp()
        rows = 0.05 * synthetic_rows(net.input_shape, 100, 0)  # three nearby points: a square of ~1
        out.append(("mlp_784_1024x3", net, build_plane(net, rows, "synthetic", 0, 1.25, None, None).plane))
    cifar = REALMODELS / "oval21_cifar_base_kw.onnx"
    if (not names or "oval21_cifar_base_kw" in names) and cifar.is_file():
        net = import_model(str(cifar)).network
        rows = 0.05 * synthetic_rows(net.input_shape, 100, 0)
        out.append(("oval21_cifar_base_kw", net, build_plane(net, rows, "synthetic", 0, 1.25, None, None).plane))
    return out


def grid_patterns(net: ir.Network, plane: Plane, n: int, max_points: int) -> tuple[float, set[bytes], bool]:
    """Seconds for an n x n grid of forward passes with activation patterns (scaled from the first
    `max_points` points when the grid is larger), the distinct patterns seen, and whether scaled."""
    umin, umax, vmin, vmax = plane.box
    us = umin + (np.arange(n) + 0.5) / n * (umax - umin)
    vs = vmin + (np.arange(n) + 0.5) / n * (vmax - vmin)
    total = n * n
    todo = min(total, max_points)
    rows_per_chunk = max(1, 20_000 // n)
    seen: set[bytes] = set()
    done = 0
    t0 = time.process_time()
    for lo in range(0, n, rows_per_chunk):
        if done >= todo:
            break
        u, v = np.meshgrid(us[lo : lo + rows_per_chunk], vs, indexing="ij")
        uv = np.stack([u.ravel(), v.ravel()], 1)
        values = net.forward_all(plane.points(uv))
        parts = []
        for i in net.kink_ids:
            node = net.nodes[i]
            z = values[node.inputs[0]]
            if isinstance(node, ir.LeakyRelu):
                parts.append(_pack((z > 0).reshape(len(uv), -1)))
            else:
                parts.append(node.candidates(z).argmax(-1).to(torch.uint8))
        pats = torch.cat(parts, 1).numpy()
        seen.update(np.unique(pats, axis=0).view(f"V{pats.shape[1]}").ravel().tolist() if pats.shape[1] else [b""])
        done += len(uv)
    seconds = time.process_time() - t0
    return seconds * total / done, seen, done < total


def slice_rows(names: list[str] | None = None, grid: int = 1000, max_grid_points: int = 250_000):
    """One row (a dict) per model, yielded as each is measured."""
    for name, net, plane in cases(names):
        t0 = time.process_time()
        part = partition_plane(net, plane)
        seconds = time.process_time() - t0
        t_grid, seen, scaled = grid_patterns(net, plane, grid, max_grid_points)
        have = {r.tobytes() for r in part.patterns.cpu().numpy()}
        yield (
            {
                "model": name,
                "regions": part.regions,
                "truncated": part.truncated,
                "vertices": part.vertices_processed,
                "seconds": seconds,
                "regions_per_s": part.regions / seconds,
                "grid_seconds": t_grid,
                "grid_scaled": scaled,
                "grid_regions": len(seen),
                "grid_found": sum(p in have for p in seen),
                "grid_over_exact": t_grid / seconds,
            }
        )


def rows(args, devices, bench) -> list[dict]:
    """The hook of benchmarks/run.py: one row per model, in its table's keys (CPU, float64)."""
    if getattr(args, "gpu", False) or getattr(args, "onnx", None):  # (its models are named here)
        return []
    names = [name for name, _ in SAMPLE] + ["mlp_784_1024x3", "oval21_cifar_base_kw"]
    if args.quick:
        names = ["spirals_mlp"]
    if args.models:
        names = [n for n in names if any(m in n for m in args.models)]
    if not names:
        return []
    grid = 200 if args.quick else 1000
    out = []
    for r in slice_rows(names, grid):
        out.append(
            {
                "model": r["model"],
                "measure": "2-D slice" + (" (truncated)" if r["truncated"] else ""),
                "device": "cpu",
                "regions": r["regions"],
                "time_s": r["seconds"],
                "regions_per_s": r["regions_per_s"],
                "vertices": r["vertices"],
                "grid": grid,
                "grid_s": r["grid_seconds"],
                "grid_scaled": r["grid_scaled"],
                "grid_regions": r["grid_regions"],
                "grid_over_exact": r["grid_over_exact"],
                "grid_agree": r["grid_found"] == r["grid_regions"],
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", type=int, default=1000)
    ap.add_argument("--max-grid-points", type=int, default=250_000)
    ap.add_argument("--models", nargs="*", default=None)
    args = ap.parse_args()
    device = "CUDA" if torch.cuda.is_available() else "CPU"
    print(f"device: {device} (float64), torch threads {torch.get_num_threads()}; seconds are CPU time")
    print("| model | regions | vertices processed | exact s | regions/s | grid s | grid regions (found by exact) | grid / exact |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in slice_rows(args.models, args.grid, args.max_grid_points):
        regions = f"{r['regions']:,}" + (" (truncated)" if r["truncated"] else "")
        grid_s = ("~" if r["grid_scaled"] else "") + f"{r['grid_seconds']:.1f}"
        print(
            f"| {r['model']} | {regions} | {r['vertices']:,} | {r['seconds']:.2f} | {r['regions_per_s']:,.0f} | "
            f"{grid_s} | {r['grid_regions']:,} ({r['grid_found']:,}) | {r['grid_over_exact']:.1f}x |"
        )


if __name__ == "__main__":
    main()
