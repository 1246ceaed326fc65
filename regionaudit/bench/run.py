"""The benchmark command: `python -m regionaudit.bench [--quick | --gpu | --onnx FILE ...] [--json OUT]`.

Every ratio in the table is taken within this one run: the FLOP bound uses the float64 matrix
product throughput measured here (the best of several measurements over the run, so the bound is
never flattered by a slow moment), and the reference walk, float32 and CUDA run on the same
segments. Region counts must agree between the methods; the table says where they do.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch

from regionaudit.analysis.density import bytes_per_knot, trace_segments
from regionaudit.analysis.distance import boundary_distances
from regionaudit.analysis.walk import walk_segment
from regionaudit.bench import measure
from regionaudit.files import write_text
from regionaudit.heap import keep_freed_memory
from regionaudit.bench.models import (REALMODELS, ModelSpec, all_models, distinct_files, probes, random_mlp, sawtooth,
                                     user_files)
from regionaudit.environment import describe
from regionaudit.errors import RegionAuditError
from regionaudit.options import parse_shape
from regionaudit.outputs import OutputRequest, check_outputs

COLUMNS = [
    ("model", "model", "{}"),
    ("measure", "measure", "{}"),
    ("device", "dev", "{}"),
    ("regions", "regions", "{}"),
    ("time_s", "time s", "{:.3f}"),
    ("regions_per_s", "regions/s", "{:.0f}"),
    ("bound_s", "bound s", "{:.3f}"),
    ("bound_ratio", "x bound", "{:.1f}"),
    ("products_ratio", "x prod", "{:.1f}"),
    ("walk_speedup", "walk/lw", "{:.1f}"),
    ("walk_agree", "=walk", "{}"),
    ("f64_over_f32", "f64/f32", "{:.2f}"),
    ("f32_agree", "=f32", "{}"),
    ("cpu_over_cuda", "cpu/cuda", "{:.1f}"),
    ("cuda_agree", "=cuda", "{}"),
    ("peak_mib", "peak MiB", "{:.0f}"),
    ("unchunked_mib", "1-pass MiB", "{:.0f}"),
    ("grid_over_exact", "grid/exact", "{:.1f}"),  # 2-D slice rows: a dense grid's time over the exact partition's
    ("grid_agree", "=grid", "{}"),  # ... and whether the partition has every pattern the grid saw
]


# distances on CUDA and CPU: the same sums in another order. The nearest unit's value is small beside
# its terms, so its last digits move more than the inputs' (5e-9 relative measured on a CIFAR ResNet)
CUDA_RTOL = 1e-6
MIN_TIMED_S = 1.0  # a fast row is timed over at least this many seconds of calls...
MAX_CALLS = 25  # ... and at most this many calls


class Bench:
    def __init__(self, repeat: int):
        self.repeat = repeat
        self.throughput: dict[str, float] = {}
        self.calls = 0

    def gemm(self, device: torch.device) -> None:
        """Measure the float64 matmul throughput on `device` again, at the next of
        `measure.MATMUL_SIZES` (each row measures one, so a quiet moment anywhere in the run
        counts); `bound` divides by the best seen in the whole run."""
        n = measure.MATMUL_SIZES[self.calls % len(measure.MATMUL_SIZES)]
        self.calls += 1
        rate = measure.matmul_throughput(device, torch.float64, n, repeat=3)
        self.throughput[device.type] = max(self.throughput.get(device.type, 0.0), rate)

    def timed(self, fn: Callable, device: torch.device, repeat: int | None = None):
        """Best time of `repeat` calls (and of more, up to MIN_TIMED_S of calls in all, for a fast
        one: on a shared machine a few calls of 0.1 s can all land in a busy moment), the last
        result, and the peak memory of one call before them. The memory probe first hands freed
        heap back to the OS, whose pages the next call then faults in again: the timed calls run
        after it, in the steady state of an audit's many passes, and the first call warms up."""
        with measure.peak_memory(device) as box:
            out = fn()
        best, spent, calls = math.inf, 0.0, 0
        while calls < (repeat or self.repeat) or (spent < MIN_TIMED_S and calls < MAX_CALLS):
            measure.sync(device)
            t0 = time.perf_counter()
            out = fn()
            measure.sync(device)
            took = time.perf_counter() - t0
            best, spent, calls = min(best, took), spent + took, calls + 1
        return best, out, box[0]

    # -- measures
    def density(self, spec: ModelSpec, device: torch.device, compare: bool) -> dict:
        net = spec.load(torch.float64, str(device))
        a, b, _ = probes(spec, net.input_shape)
        self.gemm(device)
        t, traces, peak = self.timed(lambda: trace_segments(net, a, b), device)
        regions = sum(tr.regions for tr in traces)
        macs = (measure.density_macs(net, traces), measure.density_macs(net, traces, products=True))
        row = _row(spec.name, "density", device, regions, t, macs, peak, segments=len(traces))
        row["counts"] = [tr.regions for tr in traces]
        if compare and spec.walk_segments:
            w = spec.walk_segments
            t_lw, lw, _ = self.timed(lambda: trace_segments(net, a[:w], b[:w]), device)
            t_walk, walked, _ = self.timed(lambda: [walk_segment(net, a[k], b[k]) for k in range(w)], device, 1)
            row.update(walk_segments=w, walk_s=t_walk, walk_speedup=t_walk / t_lw,
                       walk_agree=[x.regions for x in lw] == [x.regions for x in walked])
        if compare:
            net32 = spec.load(torch.float32, str(device))
            t32, tr32, _ = self.timed(lambda: trace_segments(net32, a, b), device)
            same = sum(x.regions == y.regions for x, y in zip(traces, tr32))
            row.update(f32_s=t32, f64_over_f32=t / t32, f32_agree=f"{same}/{len(traces)}")
        return row

    def distance(self, spec: ModelSpec, device: torch.device) -> dict:
        net = spec.load(torch.float64, str(device))
        _, _, pts = probes(spec, net.input_shape)
        self.gemm(device)
        t, dists, peak = self.timed(lambda: boundary_distances(net, pts), device)
        macs = (measure.distance_macs(net, len(pts)), measure.distance_macs(net, len(pts), products=True))
        row = _row(spec.name, "distance", device, None, t, macs, peak, points=len(pts))
        row["distances"] = [d.distance for d in dists]
        return row

    def memory(self, device: torch.device, name: str, net, a, b, budget: int, expected: int | None) -> dict:
        """One segment a -> b with many regions inside a `budget`-byte working memory; also what
        one unchunked pass would need (knots x bytes per knot)."""
        self.gemm(device)
        t, traces, peak = self.timed(lambda: trace_segments(net, a, b, max_memory=budget), device, 1)
        macs = (measure.density_macs(net, traces), measure.density_macs(net, traces, products=True))
        row = _row(name, "density", device, traces[0].regions, t, macs, peak, segments=1)
        per_knot = bytes_per_knot(net)
        row.update(max_memory=budget, expected_regions=expected, unchunked_mib=traces[0].t.shape[0] * per_knot / 2**20)
        return row

    def memory_rows(self, device: torch.device, depth: int, budget: int) -> list[dict]:
        """Telgarsky's sawtooth (2**depth regions, tiny knots) and a 10 000-unit layer between
        far-apart points (10 000 regions, 640 kB per knot: 6 GB in one pass)."""
        measure.fixed_mmap_threshold()  # from here on the resident set shows the working memory
        saw = sawtooth(depth)(torch.float64, str(device))
        one = torch.ones(1, 1, dtype=torch.float64)
        wide = random_mlp(10_000, depth=1, in_dim=2, n_out=1)(torch.float64, str(device))
        far = torch.tensor([[-1e3, -0.7e3]], dtype=torch.float64)
        return [
            self.memory(device, f"sawtooth-{depth}", saw, 0 * one, one, budget, 2**depth),
            self.memory(device, "wide2-10000", wide, far, -far, 16 * budget, None),
        ]

    def default_audit(self, device: torch.device) -> dict | None:
        """A default audit (100 segments, 100 points) of cifar10_resnet_2b: all of it but the import."""
        path = REALMODELS / "cifar10_resnet_2b.onnx"
        if not path.exists():
            return None
        from regionaudit.api import audit

        result = audit(str(path), device=device.type)
        timing = result.timing
        t = timing["total_s"] - timing["import_s"]  # every stage: density, distance, slice, reference frame
        regions = sum(s.regions for s in result.density.segments)
        return _row("cifar10_resnet_2b", "default audit", device, regions, t, None, None, segments=100, points=100,
                    stages_s={k: v for k, v in timing.items() if k not in ("import_s", "total_s")})


def _row(model, what, device, regions, t, macs, peak, **extra) -> dict:
    """A row; `macs` (the bound's multiply-adds, and the products' alone) become seconds in `bound`."""
    row = {"model": model, "measure": what, "device": device.type, "regions": regions, "time_s": t,
           "regions_per_s": regions / t if regions and t > 0 else None,
           "bound_macs": macs[0] if macs else None, "products_macs": macs[1] if macs else None,
           "peak_mib": peak / 2**20 if peak is not None else None}
    row.update(extra)
    return row


def _done(row: dict) -> str:
    """One line on a measured row, printed as it is done: what it found and its best time."""
    found = f"{row['regions']} regions, " if row.get("regions") is not None else ""
    return f"{row['measure']}: {found}best {row['time_s']:.3g} s"


def bound(rows: list[dict], throughput: dict[str, float]) -> None:
    """Each row's FLOP bound in seconds at the best matmul throughput its device showed in the whole
    run, and the time's ratio to it; the same over the products alone (`x prod`)."""
    for r in rows:
        rate = throughput.get(r["device"])
        for macs, seconds, ratio in (("bound_macs", "bound_s", "bound_ratio"), ("products_macs", "products_s", "products_ratio")):
            if r.get(macs) and rate:
                r[seconds] = r[macs] / rate
                r[ratio] = r["time_s"] / r[seconds]


def _pair_devices(rows: list[dict]) -> None:
    """CPU / CUDA time ratios for rows measured on both, and whether the region counts agree
    (distances: within CUDA_RTOL of each other)."""
    cpu = {(r["model"], r["measure"]): r for r in rows if r["device"] == "cpu"}
    for r in rows:
        c = cpu.get((r["model"], r["measure"]))
        if r["device"] == "cuda" and c:
            r["cpu_over_cuda"] = c["time_s"] / r["time_s"]
            if "counts" in r:
                r["cuda_agree"] = r["counts"] == c.get("counts")
            elif "distances" in r and "distances" in c:
                r["cuda_agree"] = all(math.isclose(x, y, rel_tol=CUDA_RTOL) for x, y in zip(r["distances"], c["distances"]))


SLICE_ONLY = {"grid_over_exact", "grid_agree"}  # left out of a table without 2-D slice rows


def table(rows: list[dict]) -> str:
    columns = [c for c in COLUMNS if c[0] not in SLICE_ONLY or any(r.get(c[0]) is not None for r in rows)]
    cells = [[head for _, head, _ in columns]]
    for r in rows:
        cells.append(["" if r.get(k) is None else fmt.format(r[k]) for k, _, fmt in columns])
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) if i > 2 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def select(args) -> list[ModelSpec]:
    if args.onnx:
        return user_files(args.onnx, args.pairs, args.max_points, args.fraction, args.input_shape)
    specs = all_models()
    if args.quick:
        specs = [s for s in specs if "tiny" in s.tags]
    elif args.gpu:
        specs = [replace(s, segments=s.gpu_probes, points=s.gpu_probes) if s.gpu_probes else s for s in specs if "gpu" in s.tags]
    if args.models:
        specs = [s for s in specs if any(m in s.name for m in args.models)]
    return specs


def _wanted(args, name: str) -> bool:
    """The rows not tied to one model spec: in the full run, or when --models names them."""
    return not args.quick and not args.onnx and (not args.models or any(m in name for m in args.models))


def run(args, specs: list[ModelSpec] | None = None) -> dict:
    """Every row of the table; `specs` are the models (default: `select(args)`)."""
    devices = [torch.device("cpu")]
    if torch.cuda.is_available() and not args.cpu_only:
        devices.append(torch.device("cuda"))
    torch.set_num_threads(args.threads) if args.threads else None
    keep_freed_memory()  # as the command line does
    bench = Bench(args.repeat)
    rows, skipped, failed = [], [], []
    for spec in select(args) if specs is None else specs:
        why = spec.available()
        if why:
            skipped.append({"model": spec.name, "reason": why})
            print(f"skipped {spec.name}: {why}", file=sys.stderr)
            continue
        for dev in devices:
            print(f"{spec.name} on {dev.type} ...", file=sys.stderr, flush=True)
            measures = [("density", lambda: bench.density(spec, dev, compare=dev.type == "cpu" and not args.gpu))]
            if spec.points:
                measures.append(("distance", lambda: bench.distance(spec, dev)))
            for what, measure_it in measures:
                try:
                    rows.append(measure_it())
                    print(f"  {_done(rows[-1])}", file=sys.stderr, flush=True)  # (a large model takes minutes)
                except Exception as exc:  # reported, with its traceback; every other row is kept
                    traceback.print_exc()
                    failed.append({"model": spec.name, "measure": what, "device": dev.type,
                                   "error": f"{type(exc).__name__}: {exc}"})
    if _wanted(args, "memory sawtooth wide2") and not args.gpu:
        for dev in devices:
            rows.extend(bench.memory_rows(dev, args.sawtooth_depth, args.sawtooth_memory))
        keep_freed_memory()  # the memory rows hand freed blocks back at once, to show the working set
    if _wanted(args, "default-audit") and not args.no_audit:
        for dev in devices:
            row = bench.default_audit(dev)
            rows.append(row) if row else None
    # Slice rows (bench_slice.py beside benchmarks/run.py) join here: they use the same keys.
    for extra in args.extra_rows:
        rows.extend(extra(args, devices, bench))
    _pair_devices(rows)
    bound(rows, bench.throughput)
    if not torch.cuda.is_available():
        skipped.append({"model": "*", "reason": "no CUDA device: CPU vs CUDA not measured"})
    return {
        "environment": describe(devices[-1], "float64"),
        "matmul_macs_per_s": bench.throughput,
        "rows": rows,
        "skipped": skipped,
        "failed": failed,
    }


def _shape(text: str) -> tuple[int, ...]:
    try:
        return parse_shape(text)
    except RegionAuditError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return n


def _fraction(text: str) -> float:
    try:
        f = float(text)
    except ValueError:
        f = math.nan
    if not 0 < f <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number in (0, 1]")
    return f


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m regionaudit.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=None, help="write the rows and the environment here")
    ap.add_argument("--quick", action="store_true", help="one tiny model (what CI runs)")
    ap.add_argument("--gpu", action="store_true", help="the GPU subset: CIFAR-size nets (32 segments and points), the 155k-unit conv net and a default audit, CPU and CUDA")
    # (`extend`: each --models or --onnx adds to the list; a second would otherwise replace the first)
    ap.add_argument("--models", nargs="*", action="extend", default=None, help="only models whose name contains one of these")
    ap.add_argument("--repeat", type=_positive, default=2, help="best of this many timed calls (default 2)")
    ap.add_argument("--threads", type=_positive, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--cpu-only", action="store_true", help="do not use CUDA even when present")
    ap.add_argument("--no-audit", action="store_true", help="leave out the default-audit row (minutes on a laptop CPU)")
    ap.add_argument("--onnx", nargs="+", action="extend", type=Path, default=None, metavar="FILE",
                    help="measure these ONNX files instead of the built-in models (density and distance rows)")
    ap.add_argument("--input-shape", type=_shape, default=None, metavar="SHAPE",
                    help="--onnx: the input shape without the batch axis, e.g. 3,32,32, where the file leaves it open")
    ap.add_argument("--pairs", type=_positive, default=4, help="--onnx: segments per file (default 4; the first also walked)")
    ap.add_argument("--max-points", type=_positive, default=4, help="--onnx: boundary-distance points per file (default 4)")
    ap.add_argument("--fraction", type=_fraction, default=1.0,
                    help="--onnx: each segment a -> a + f (b - a), 0 < f <= 1 (default 1; large nets: a piece)")
    ap.add_argument("--sawtooth-depth", type=_positive, default=17, help="memory row: 2**depth regions on one segment")
    ap.add_argument("--sawtooth-memory", type=_positive, default=4 << 20, help="memory row: --max-memory in bytes")
    return ap


def main(argv: list[str] | None = None, extra_rows: list[Callable] | None = None) -> dict:
    ap = parser()
    args = ap.parse_args(argv)
    args.extra_rows = extra_rows or []
    if args.onnx and (args.quick or args.models):
        ap.error("--onnx measures the files named; --quick and --models pick built-in models")
    for option in ("input_shape", "pairs", "max_points", "fraction"):
        if not args.onnx and getattr(args, option) != ap.get_default(option):
            ap.error(f"--{option.replace('_', '-')} applies to the files of --onnx only")
    if args.json:  # an output that cannot be written, or that would replace a model, before the run
        try:
            check_outputs([OutputRequest("json", args.json)], {f"the model {p}": p for p in args.onnx or ()})
        except RegionAuditError as exc:
            ap.exit(2, f"{ap.prog}: error: {exc}\n")
    repeated = []
    if args.onnx:  # a file named twice is measured once
        args.onnx, repeated = distinct_files(args.onnx)
    specs = select(args)
    if args.onnx:  # a file that cannot be measured is an error before anything runs
        for spec in specs:
            why = spec.available()  # (an import, which `run` does not repeat for the same spec)
            if why:
                ap.exit(2, f"{ap.prog}: error: {why}\n")
    out = run(args, specs)
    out["skipped"][:0] = [{"model": str(p), "reason": f"the same file as {q}"} for p, q in repeated]
    print(table(out["rows"]))
    rates = ", ".join(f"{k} {v / 1e9:.1f} GMAC/s" for k, v in out["matmul_macs_per_s"].items())
    env = out["environment"]
    print(f"float64 matmul throughput: {rates}; torch {env['torch']}, {env['threads']} threads, {env['cpu_capability']}")
    for s in out["skipped"]:
        print(f"skipped {s['model']}: {s['reason']}")
    for f in out["failed"]:
        print(f"FAILED {f['model']} {f['measure']} on {f['device']}: {f['error']}")
    if args.json:
        try:  # (a disk that filled during the run)
            write_text(args.json, json.dumps(out, indent=1))
        except RegionAuditError as exc:
            ap.exit(2, f"{ap.prog}: error: {exc}\n")
    if out["failed"]:
        raise SystemExit(1)
    return out
