"""Keep freed tensor memory in the process instead of handing it back to the operating system.

By default glibc returns large freed blocks to the kernel (``munmap``, heap trimming), so the next
forward pass faults every page of its activations in again, zero-filled, at about a microsecond
per 4 KiB page: some 10% of a dualvit_s forward on two CPU cores, and more for a capture, whose
maps are all fresh memory. This is a choice for whoever owns the process (the app, the benches),
not for the library, so nothing in ``model`` calls it.

Kept memory is kept per malloc arena, and glibc gives each new thread its own arena (up to eight
per core): the server's worker threads each held their own freed activations, and 8 clients
running explanations took the shipped model's server from 3.4 to 5.5 GiB over 160 requests, still
climbing. Two arenas were not enough on their own: each still kept up to ``KEPT_FREE_BYTES`` free at
its top and pages freed inside it, so the same run crept from 2.0 to 2.5 GiB over 300 requests. An
explanation runs for seconds and leaves its autograd buffers freed behind it, so the server hands
freed memory back after each one (``release_freed_memory``), where the refaulting costs nothing a
reader notices.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import platform

# mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
# Blocks up to the largest mmap threshold glibc documents come from the heap, which is reused...
HEAP_BLOCK_LIMIT = 32 << 20
# ...and is trimmed only once this much is free at its top.
KEPT_FREE_BYTES = 512 << 20
# Threads share this many arenas, so freed memory is reused across threads instead of kept per thread.
ARENAS = 2

_kept = False


@functools.cache  # looked up once: release_freed_memory runs after every explanation
def _libc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds and share its arenas between threads; returns whether the
    allocator took the settings (glibc only). Call it before starting threads: arenas already made stay."""
    global _kept
    libc = _libc()
    if libc is None:
        return False
    settings = ((M_MMAP_THRESHOLD, HEAP_BLOCK_LIMIT), (M_TRIM_THRESHOLD, KEPT_FREE_BYTES), (M_ARENA_MAX, ARENAS))
    _kept = all([bool(libc.mallopt(parameter, value)) for parameter, value in settings])
    return _kept


def freed_memory_kept() -> bool:
    return _kept


def release_freed_memory() -> bool:
    """Hand every whole free page of every arena back to the operating system (glibc's ``malloc_trim``);
    returns whether any memory was released (False off glibc)."""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
