"""Keep freed memory in the process: glibc's allocator settings for the many short-lived tensors of a search.

Every training step of a search allocates and frees tensors of a few hundred kilobytes. With glibc's
defaults, allocations above its mmap threshold get fresh mappings that are unmapped when freed, and the
top of the heap is trimmed back to the operating system, so the same memory is faulted in again, page by
page, step after step. A paper search on digits took 1.77 million minor page faults (3.6 s of system time
on a 2-core VM); with the settings below, 95 thousand, with no change in wall time beyond that machine's
noise (``benchmarks/PERFORMANCE.md``). A fault costs a microsecond or two on a plain Linux kernel; in a
sandbox that handles faults in a user-space kernel (gVisor, for one) it costs more, so a search may run
slower there without these settings (not measured).

:func:`keep_freed_memory` raises the trim threshold and the top pad and fixes the mmap threshold at
glibc's largest, through ``mallopt``. It changes where memory comes from, never a value computed. The
command line calls it once at start; a Python user may call it too. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

#: ``mallopt`` parameters (glibc's ``malloc.h``).
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
#: Freed memory at the top of the heap kept up to this size before any is returned.
TRIM_THRESHOLD = 1 << 30
#: Extra memory asked for whenever the heap grows, so that it grows seldom.
TOP_PAD = 64 << 20
#: Allocations up to this size come from the heap, not from mappings of their own: glibc's
#: maximum on 64-bit systems (larger values are refused).
MMAP_THRESHOLD = 32 << 20
#: The same settings as the environment variables glibc reads when a process starts (for worker
#: processes started from here).
ALLOCATOR_ENVIRONMENT = {
    "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD),
    "MALLOC_TOP_PAD_": str(TOP_PAD),
    "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD),
}


def keep_freed_memory() -> bool:
    """Set glibc's allocator to keep freed memory for reuse; returns whether every setting took.

    Process-wide; call it once, early. Returns ``False`` (and changes nothing) where the C library
    is not glibc.

    Examples
    --------
    >>> isinstance(keep_freed_memory(), bool)
    True
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = ((M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD), (M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    return all(mallopt(parameter, value) == 1 for parameter, value in settings)
