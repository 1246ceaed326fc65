"""Helpers shared by the analyzers: which nodes matter, how long tensors live, memory budgets."""

from __future__ import annotations

import math
import warnings
from typing import Callable

import torch

from regionaudit.errors import BadData, TooLarge
from regionaudit.ir import Clip, Concat, LeakyRelu, MaxPool, Network, Node, Pad, Reshape, Stack, Take, Transpose, UnitKink
from regionaudit.limits import CPU_WORKING_BYTES, format_bytes

# Crossings closer than this in t are one knot (DESIGN.md, "Exact 1-D analysis").
T_MERGE = 1e-12
# `magnitude` on CPU reduces this many bytes of rows at a time, so that its second reduction reads
# them from the cache (measured on 16-64 MB values: 20-25 % faster than two passes over memory)
MAGNITUDE_CHUNK_BYTES = 4 << 20


def zero_tolerance(dtype: torch.dtype) -> float:
    """Fraction of the largest |value| computed so far at a point (input and every node before)
    below which a value there is zero up to rounding.

    A unit computed as the difference of two equal functions along different paths (the min/max
    banks of two-level lattice nets) is exactly zero in theory but comes out as a few eps of noise;
    the signs of such noise are not sign changes, nor its sign against a tied MaxPool candidate.
    16 eps, as the walk's tolerance in t: larger would also drop genuine crossings in float32.
    """
    return 16 * torch.finfo(dtype).eps


def magnitude(v: torch.Tensor) -> torch.Tensor:
    """Largest |value| of each probe's slice of v (P, ...), without an |v| copy: the scale of
    `zero_tolerance`."""
    if v[0].numel() == 0:
        return v.new_zeros(v.shape[0])
    flat = v.reshape(v.shape[0], -1)
    # two vectorised reductions: about 10x faster than an inf-norm on CPU, bitwise the same
    step = max(1, MAGNITUDE_CHUNK_BYTES // (flat.shape[1] * flat.element_size()))
    if flat.device.type != "cpu" or flat.shape[0] <= step:
        return torch.maximum(flat.amax(dim=1), flat.amin(dim=1).neg())
    out = flat.new_empty(flat.shape[0])
    for lo in range(0, flat.shape[0], step):
        rows = flat[lo : lo + step]
        torch.maximum(rows.amax(dim=1), rows.amin(dim=1).neg(), out=out[lo : lo + step])
    return out


def sparse_rows(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, columns: int) -> torch.Tensor:
    """The sparse (CSR) matrix whose row r holds values[k] at column col[k] for k in
    crow[r]..crow[r + 1] - 1 (a column twice in a row: its values add, in order): on CPU, torch
    multiplies it with a dense matrix by MKL's sparse product, which writes or adds each output
    row once."""
    with warnings.catch_warnings():  # (torch warns, once a process, that its CSR tensors are in beta)
        warnings.simplefilter("ignore")
        return torch.sparse_csr_tensor(crow, col, values, (crow.shape[0] - 1, columns), check_invariants=False)


def where_true(mask: torch.Tensor, *xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The rows of each x where the 1-D `mask` holds, as `x[mask]` gives them, with one `nonzero`
    for all of them: on a GPU each boolean index waits for the device, so four of them wait four
    times."""
    idx = mask.nonzero().squeeze(1)
    return tuple(x[idx] for x in xs)


def bounded_by_inputs(node: Node) -> bool:
    """Whether no |value| of the node's output exceeds the largest |value| of its inputs: then it
    cannot raise the rounding scale of `zero_tolerance`, and an analysis need not measure it."""
    # the same values, or a selection of them (with zeros: a Pad's are constant zeros)
    if isinstance(node, (Reshape, Transpose, MaxPool, Concat, Take, Pad)):
        return True
    if isinstance(node, Stack):  # its constant candidate is a value of its own
        return node.const is None
    # (read from the nodes' numbers where they have them: on a GPU a tensor's answer waits for it)
    if isinstance(node, LeakyRelu):  # |slope * z| <= |z|
        a = node.scalar_slope()
        return abs(a) <= 1 if a is not None else bool(node.slope.abs().max() <= 1)
    if isinstance(node, Clip):  # between 0 and z where lo <= 0 <= hi (ReLU6, Hardtanh, HardSigmoid)
        bounds = node.bounds()
        if bounds is not None:
            return bounds[0] <= 0 <= bounds[1]
        return bool((node.lo <= 0).all() and (node.hi >= 0).all())
    return False


def overwritable(held: dict[int, torch.Tensor], q: int, last: dict[int, int], i: int, keep: tuple = ()) -> bool:
    """Whether node i may overwrite the tensor `held[q]` of node q: read last by i, and sharing its
    storage with no other tensor held (a reshape's is a view of its input's) nor with one in
    `keep`, which the caller holds beyond this node."""
    if last[q] != i:
        return False
    others = [v for k, v in held.items() if k != q] + list(keep)
    return not any(shares_storage(held[q], v) for v in others)


def shares_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether a and b are views of one storage (writing one may change the other)."""
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def readers(network: Network, order: list[int], q: int) -> list[int]:
    """The nodes of `order` that read node q."""
    return [n for n in order if q in network.nodes[n].inputs]


def first_kink(network: Network, order: list[int]) -> int | None:
    """The first kink node the analyses run, None in an affine network."""
    return next((i for i in order if network.nodes[i].is_kink), None)


def needed_nodes(network: Network) -> list[int]:
    """Ids of the nodes the analysed output depends on, in topological order."""
    need = [False] * len(network.nodes)
    need[network.output] = True
    for i in range(network.output, -1, -1):
        if need[i]:
            for j in network.nodes[i].inputs:
                need[j] = True
    need[0] = True
    return [i for i, flag in enumerate(need) if flag]


def tangent_scratch(network: Network, node: Node) -> int:
    """Values one probe holds beside the live tensors while `node` runs, where tangents or
    polygons go through it: a kink node's sign products, and every max-pool window's candidates,
    copied, with their differences."""
    if isinstance(node, UnitKink):
        return 4 * math.prod(node.shape)
    if isinstance(node, MaxPool):
        return 5 * math.prod(node.shape) * math.prod(node.kernel) + math.prod(network.nodes[node.inputs[0]].shape)
    return 0


def bytes_per_probe(network: Network, order: list[int], itemsize: int, live_factor: float = 2.0,
                    scratch: Callable[[Network, Node], int] = tangent_scratch) -> int:
    """Peak bytes one probe (a knot, or a tangent of one point) needs while a pass runs.

    Counts every live tensor at its peak (times `live_factor` for the copies made when knots are
    inserted) plus the temporaries of the node running (`scratch`, in values).
    """
    last = network.last_use(order)
    live: dict[int, int] = {}
    peak = 0
    for i in order:
        node = network.nodes[i]
        live[i] = math.prod(node.shape)
        peak = max(peak, live_factor * sum(live.values()) + scratch(network, node))
        for j in list(live):
            if last.get(j, j) <= i:
                del live[j]
    return int(peak * itemsize) + 64


def available_memory(device: torch.device) -> int:
    """Free GPU memory on CUDA; available RAM on CPU (2 GiB where the system does not say)."""
    device = torch.device(device)
    if device.type == "cuda":
        try:
            free, _total = torch.cuda.mem_get_info(device)
            return int(free)
        except Exception:  # pragma: no cover - depends on the driver
            return 4 << 30
    avail = 2 << 30
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    return avail


def default_max_memory(device: torch.device, cpu_cap: int = CPU_WORKING_BYTES) -> int:
    """A working-memory budget: half the free GPU memory on CUDA; on CPU a quarter of the
    available RAM, at most `cpu_cap` (bigger chunks only thrash the caches there)."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(available_memory(device) * 0.5)
    return int(min(available_memory(device) * 0.25, cpu_cap))


def check_fits(piece: int, max_memory: int | None, device: torch.device, what: str) -> None:
    """`--max-memory` is a chunking budget; a piece that cannot be split below it (one batch of
    the fewest probes a pass runs) is refused before it is allocated, with its size. Without
    `--max-memory` the piece is held against the memory available."""
    limit = max_memory if max_memory is not None else available_memory(device)
    if piece > limit:
        bound = f"--max-memory {format_bytes(limit)}" if max_memory is not None else f"the {format_bytes(limit)} available"
        raise TooLarge(
            f"{what} needs {format_bytes(piece)} at once (it cannot be split), more than {bound}; "
            "raise --max-memory if the machine has the memory, or audit a smaller model"
        )


def check_finite(x: torch.Tensor, what: str) -> torch.Tensor:
    """`x` (probes in the network's precision) if every value is finite. A NaN compares false
    with every value, so a NaN segment would read as one region and a NaN point as having no
    nearest boundary; data files are checked as they are read, arrays given directly here."""
    bad = int((~torch.isfinite(x)).sum())
    if bad:
        raise BadData(f"{what} hold {bad} NaN or infinite value{'s' if bad != 1 else ''} (in {str(x.dtype).removeprefix('torch.')})")
    return x
