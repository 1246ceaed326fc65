"""What the benchmark measures besides time: the machine's matmul throughput, the FLOP bounds
computed from the IR, and peak memory."""

from __future__ import annotations

import ctypes
import math
import threading
import time
from contextlib import contextmanager

import torch

from regionaudit.analysis._common import needed_nodes
from regionaudit.analysis.density import SegmentTrace
from regionaudit.ir import Conv, ConvTranspose, Einsum, MatMul, Network


# square products whose best rate is the machine's: a BLAS runs some sizes slower than others (on
# one x86 core, 1024² at 18.5 GMAC/s, 1152² at 22.4), and the bound is meant to take its best
MATMUL_SIZES = (1024, 1152, 1536, 2048)


def matmul_throughput(device: torch.device, dtype: torch.dtype, n: int = 1024, repeat: int = 5) -> float:
    """Multiply-adds per second of one n × n matrix product on `device` (best of `repeat`)."""
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    best = math.inf
    for _ in range(repeat + 1):  # the first call warms up
        sync(device)
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return n**3 / best


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so that a clock read after it counts that work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def node_macs(network: Network) -> dict[int, int]:
    """Multiply-adds of one forward pass per node the output depends on."""
    return {
        i: network.nodes[i].macs([network.nodes[j].shape for j in network.nodes[i].inputs])
        for i in needed_nodes(network)
    }


PRODUCTS = (MatMul, Conv, ConvTranspose, Einsum)  # the nodes with weights: what "multiply-adds" most often counts


def products_only(network: Network, macs: dict[int, int]) -> dict[int, int]:
    """`macs` of the products alone: a ReLU, a pool, a sum or a resize counted as nothing, where
    `node_macs` counts one multiply-add per element or candidate (so a bound over the products
    alone is lower, and its ratio higher, on nets whose time is in those passes)."""
    return {i: m if isinstance(network.nodes[i], PRODUCTS) else 0 for i, m in macs.items()}


def density_macs(network: Network, traces: list[SegmentTrace], products: bool = False) -> int:
    """Σ over nodes of (knots present when the node runs) × (its multiply-adds), summed over
    segments: knots made by a kink node are present from that node on. `products`: of the
    products alone (`products_only`)."""
    macs = node_macs(network)
    if products:
        macs = products_only(network, macs)
    ids = {network.nodes[i].name: i for i in network.kink_ids}
    total = 0
    for tr in traces:
        made = sorted((ids[name], k) for name, k in tr.knots_per_layer.items())
        present, m = 2, 0
        for i in sorted(macs):
            while m < len(made) and made[m][0] <= i:
                present += made[m][1]
                m += 1
            total += present * macs[i]
    return total


def distance_macs(network: Network, points: int, products: bool = False) -> int:
    """input size × forward multiply-adds, per point: one tangent per input direction."""
    macs = node_macs(network)
    if products:
        macs = products_only(network, macs)
    return points * math.prod(network.input_shape) * sum(macs.values())


def _rss() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * 4096
    except OSError:  # pragma: no cover - not Linux
        return 0


def fixed_mmap_threshold(nbytes: int = 1 << 20) -> None:
    """Serve allocations above `nbytes` by mmap, so that freeing them returns them to the OS.

    glibc otherwise raises its threshold after the first large free and keeps freed buffers in
    its heap: the resident set then grows with fragmentation across many chunked passes and no
    longer shows the working memory. Only the benchmark process sets this.
    """
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, int(nbytes))  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def _trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


@contextmanager
def peak_memory(device: torch.device, period: float = 0.005):
    """Peak memory above the level at entry, in bytes, in `box[0]` after the block: resident set
    sampled every `period` s on CPU (torch's allocations are invisible to tracemalloc), the
    allocator's peak on CUDA."""
    box = [0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        yield box
        torch.cuda.synchronize(device)
        box[0] = torch.cuda.max_memory_allocated(device) - base
        return
    _trim()  # hand freed heap back to the OS, so that growth shows in the resident set
    base = _rss()
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss())
            stop.wait(period)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        stop.set()
        thread.join()
        box[0] = max(peak[0], _rss()) - base
