"""Keep freed tensor memory in the process instead of handing it back to the operating system.

By default glibc returns large freed blocks to the kernel (``munmap``, heap trimming), so the next
forward pass faults every page of its activations in again, zero-filled, at about a microsecond
per 4 KiB page: some 10% of a dualvit_s forward on two CPU cores, and more for a capture, whose
maps are all fresh memory. This is a choice for whoever owns the process (the app, the benches),
not for the library, so nothing in ``model`` calls it.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform

# mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Blocks up to the largest mmap threshold glibc documents come from the heap, which is reused...
HEAP_BLOCK_LIMIT = 32 << 20
# ...and is trimmed only once this much is free at its top.
KEPT_FREE_BYTES = 512 << 20

_kept = False


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds; returns whether the allocator took them (glibc only)."""
    global _kept
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _kept = bool(libc.mallopt(M_MMAP_THRESHOLD, HEAP_BLOCK_LIMIT)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEPT_FREE_BYTES))
    return _kept


def freed_memory_kept() -> bool:
    return _kept
