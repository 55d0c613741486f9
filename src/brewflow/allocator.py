"""How a compute process's C allocator keeps the memory numpy frees (glibc's ``mallopt``).

A partition's columnar steps allocate and free arrays of a few MB, hundreds of times.
glibc hands such blocks back to the kernel when they are freed (``munmap``, or trimming the
heap's top) and takes them again at the next allocation: every page is faulted in and zeroed
afresh, each time. On the ADL queries that cost each forked worker 150,000 page faults and
0.27 s of system time in its 1.6 s of compute (500k generated events).
:func:`keep_freed_memory` makes the process keep what it frees for its next arrays: blocks
below :data:`MMAP_THRESHOLD` come from the heap, and the heap's free top is trimmed only
beyond :data:`TRIM_THRESHOLD`. A process's memory then stays at its high-water mark (what it
needed at its peak) until it exits: meant for short-lived processes that compute large
partitions (the forked workers of ``brewflow adl``: ``forked.compute_partitions(keep_memory=
True)``), not for a long-lived parent. On an analyze job's chunks of 10k events (arrays
below a MB, which glibc's own adaptive thresholds already keep) it measured 6% slower, and is
not used there.

A no-op (the allocator's default) where the C library has no ``mallopt`` (musl, macOS,
Windows), and where the user set how glibc returns memory already (:func:`user_tuned`, e.g.
``MALLOC_TRIM_THRESHOLD_``): theirs is kept."""

from __future__ import annotations

import logging
import os

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "keep_freed_memory", "user_tuned"]

log = logging.getLogger(__name__)

MMAP_THRESHOLD = 32 * 1024 * 1024
"""Bytes: smaller blocks come from the heap (glibc's largest threshold on 64 bits)."""
TRIM_THRESHOLD = 2**31 - 1
"""Bytes of free memory at the heap's top kept before it is trimmed (mallopt's largest)."""
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h


_TUNED = ("TRIM_THRESHOLD", "MMAP_THRESHOLD", "TOP_PAD", "MMAP_MAX")  # what this module sets,
# or what decides the same (glibc's environment variables MALLOC_<x>_, tunables glibc.malloc.<x>)


def user_tuned(environ: dict[str, str] | None = None) -> bool:
    """Whether ``environ`` (default: this process's) sets how glibc's allocator returns
    memory (trim and mmap thresholds, top pad, mmap count): a non-empty ``MALLOC_<x>_``
    variable or ``glibc.malloc.<x>`` tunable in ``GLIBC_TUNABLES`` (names exact, as glibc
    reads them). Others (e.g. ``MALLOC_ARENA_MAX``) do not count."""
    environ = dict(os.environ) if environ is None else environ
    tunables = dict(
        item.partition("=")[::2] for item in environ.get("GLIBC_TUNABLES", "").split(":")
    )
    return any(
        environ.get(f"MALLOC_{x}_") or tunables.get(f"glibc.malloc.{x.lower()}") for x in _TUNED
    )


def keep_freed_memory() -> bool:
    """Set this process's allocator to keep freed memory (see the module doc); whether it
    did. Both settings go together: a fixed mmap threshold alone turns off glibc's dynamic
    one, which also raised the trim threshold, and faults more than the default (the trim
    threshold, which glibc always accepts, is set first)."""
    if user_tuned():
        log.debug("the allocator's settings from the environment are kept")
        return False
    import ctypes  # here: only a compute process needs it

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, TypeError):  # no mallopt; Windows: no CDLL(None)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = (
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        and mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    )
    if not done:
        log.debug("mallopt refused the settings: the allocator's defaults stay")
    return done
