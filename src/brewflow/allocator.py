"""How a compute process's C allocator keeps the memory numpy frees (glibc's ``mallopt``).

A chunk's columnar steps allocate and free arrays of a few MB, hundreds of times per chunk.
glibc hands such blocks back to the kernel when they are freed (``munmap``, or trimming the
heap's top) and takes them again at the next allocation: every page is faulted in and zeroed
afresh, each time. On the ADL queries that was a sixth of a worker's time (0.27 s of 1.6 s of
system time for 500k generated events: 150,000 page faults). :func:`keep_freed_memory` makes
the process keep what it frees for its next arrays: blocks up to :data:`MMAP_THRESHOLD` come
from the heap, and the heap's free top is never trimmed. A process's memory then stays at its
high-water mark (what it needed at its peak, which the job's memory was sized for anyway)
until it exits: meant for short-lived processes that compute large partitions (the forked
workers of ``brewflow adl``: ``forked.compute_partitions(keep_memory=True)``), not for a
long-lived parent. On an analyze job's chunks of 10k events (arrays well below a MB, which
glibc's own adaptive thresholds already keep) it measured 6% slower, and is not used there.

A no-op where the C library has no ``mallopt`` (musl, macOS, Windows): the allocator's default.
"""

from __future__ import annotations

import ctypes
import logging

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "keep_freed_memory"]

log = logging.getLogger(__name__)

MMAP_THRESHOLD = 32 * 1024 * 1024
"""Bytes: blocks up to this size come from the heap (glibc's largest allowed on 64 bits)."""
TRIM_THRESHOLD = 2**31 - 1
"""Bytes of free memory at the heap's top kept rather than trimmed (mallopt's largest)."""
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h


def keep_freed_memory() -> bool:
    """Set this process's allocator to keep freed memory (see the module doc); whether it
    did. Both settings go together: a fixed mmap threshold alone turns off glibc's dynamic
    one, which also raised the trim threshold, and faults more than the default."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = (
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
        and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    )
    if not done:
        log.debug("mallopt refused the settings: the allocator's defaults stay")
    return done
