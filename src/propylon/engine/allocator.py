"""glibc malloc settings for a process that streams bodies.

uvloop hands each read to the protocol as a new ``bytes`` object of up to 256 KiB, and llhttp
hands body chunks on the same way. glibc serves allocations above its mmap threshold (128 KiB
at start) with a fresh ``mmap`` and returns them with ``munmap``, so every large chunk of a
streamed body page-faulted its memory in anew: measured on a 10 MiB upload, ~3,300 minor
faults per upload and three times the CPU time. glibc raises that threshold by itself only
after the first large block is freed, which a worker may or may not happen to do while it
starts (importing aiohttp did, by chance). Setting the thresholds explicitly makes the fast
path deliberate: large chunks come from the heap, which keeps up to ``TRIM_THRESHOLD`` of
free memory instead of giving it back after every chunk. Flow control bounds how many chunks
are alive at once, so this does not grow memory with body size.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger("propylon.engine")

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 1024 * 1024
"""Blocks up to this size come from the heap (above every read or chunk size we produce)."""
TRIM_THRESHOLD = 8 * 1024 * 1024
"""Free memory at the top of the heap kept for the next chunks rather than returned."""


def tune_for_streaming() -> bool:
    """Apply the thresholds; False where the C library is not glibc (nothing to do there)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    applied: bool = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    applied = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and applied
    if not applied:
        log.debug("mallopt refused the streaming thresholds; using the C library's defaults")
    return applied
