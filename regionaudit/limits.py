"""Hard limits on what regionaudit accepts, in one place, and the run-time limit (`--timeout`).

Sizes are checked against these before anything is allocated for them, so a hostile or absurd
file is one clear refusal instead of an exhausted machine. `--max-file-size` raises the file
limit; the others bound what an exact audit can handle at all.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from contextlib import contextmanager

from regionaudit.errors import BadOption, TimeLimit

MAX_FILE_BYTES = 2 * 2**30  # a model or data file (an .npz member as its header declares it); --max-file-size
MAX_TENSOR_ELEMENTS = 2**31  # one stored or folded tensor (initializer, Constant, a constant-folded result)
MAX_ACTIVATION_ELEMENTS = 2**27  # one tensor the network computes (input included), at batch 1
MAX_FOLDED_ELEMENTS = 2**27  # one constant computed at import (ConstantOfShape, Expand, Tile...)
MAX_PARAMS = 50_000_000  # all float initializers together
MAX_NODES = 200_000  # nodes in the graph, subgraphs included
CPU_WORKING_BYTES = 1 << 30  # the default --max-memory on CPU is at most this (larger chunks only thrash caches)


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def parse_size(value: str | None, option: str) -> int | None:
    """Bytes from '512M', '2G', '1.5GiB' or a plain number of bytes."""
    if value is None:
        return None
    v = str(value).strip().upper().removesuffix("IB").removesuffix("B")
    scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    try:
        n = float(v[:-1]) * scale[v[-1]] if v and v[-1] in scale else float(v)
    except ValueError:
        raise BadOption(f"{option} must look like 512M or 2G, got {value!r}") from None
    if not n > 0 or not math.isfinite(n):
        raise BadOption(f"{option} must be a positive size, got {value!r}")
    return int(n)


@contextmanager
def time_limit(seconds: float | None, less_work: str | None = "--pairs, --max-points, --max-knots"):
    """Raise TimeLimit in the main thread once `seconds` have passed (SIGALRM; POSIX only).
    `less_work` names the command's options that ask for less work (None: it has none). Inside
    a limit that ends sooner (the command line's, over the outputs it writes too) it adds none;
    inside a later one it runs its own, then gives the outer one back what is left of it."""
    if not seconds:
        yield
        return
    if not hasattr(signal, "setitimer"):  # pragma: no cover - Windows
        raise BadOption("--timeout needs a POSIX system (SIGALRM)")
    if threading.current_thread() is not threading.main_thread():  # (signal.signal would raise ValueError)
        raise BadOption("--timeout works only in the main thread (SIGALRM is delivered there)")

    def expired(signum, frame):
        raise TimeLimit(
            f"stopped: the run took longer than --timeout {seconds:g} s; raise --timeout"
            + (f", or ask for less work ({less_work})" if less_work else "")
        )

    outer = signal.getitimer(signal.ITIMER_REAL)[0]  # seconds left of a limit already running
    if 0 < outer <= seconds:
        yield
        return
    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer > 0:
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - started), 1e-6))


@contextmanager
def signals_deferred():
    """Hold SIGINT, SIGTERM and SIGALRM while the block runs (a file written and renamed into
    place must not be cut in half); each one that came is acted on right after, by the handler
    that was in place. Python runs signal handlers in the main thread only, so handlers are
    swapped rather than masked (a native thread pool would receive a masked signal anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum, frame):
        pending.append(signum)

    held = [getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGALRM") if hasattr(signal, n)]
    previous = {s: signal.signal(s, hold) for s in held if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        for s in dict.fromkeys(pending):
            handler = previous.get(s)
            if callable(handler):
                handler(s, None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), s)
