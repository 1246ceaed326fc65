"""The C heap's handling of large blocks, tuned for the analyses' allocation pattern.

A pass allocates and frees tensors of tens of MB at every node. glibc serves blocks above its
mmap threshold (at most 32 MiB, often less) by fresh mappings and returns them to the system when
freed, and trims the heap's free top; every such allocation then faults in each of its pages
again, which costs several times the elementwise operation that fills it (measured: a ReLU over
16 MB is 5x slower). Keeping freed blocks up to the working-memory budget in the heap avoids
this. It is process-wide, so only the programs that own their process (the command line and the
benchmark) call it; a program that imports regionaudit may call it too.
"""

from __future__ import annotations

import ctypes

from regionaudit.limits import CPU_WORKING_BYTES

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters
M_MMAP_THRESHOLD = -3


def keep_freed_memory(nbytes: int = CPU_WORKING_BYTES) -> bool:
    """Serve blocks below `nbytes` from the heap and keep up to `nbytes` of freed heap; False
    where the C library is not glibc (nothing is changed there)."""
    value = ctypes.c_int(min(int(nbytes), 2**31 - 1))
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, value)) and bool(libc.mallopt(M_TRIM_THRESHOLD, value))
    except (OSError, AttributeError):  # not glibc
        return False
