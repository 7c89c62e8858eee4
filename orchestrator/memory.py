"""Keep concurrent solves from hoarding freed memory.

Concurrent solves run on threads, and glibc gives busy threads heaps (arenas) of their own; freed
cache tensors then often stay in those heaps instead of returning to the system. Measured on the
1.5B with 8 solves at once: 10.8 GB after 15 min and growing ~250 MB a minute with the default
arenas, a flat 8.5-9.3 GB with two; 16 solves with the default grew past 24 GB and were killed.
Capping the arenas (what ``MALLOC_ARENA_MAX=2`` does at start-up) trades a little allocator
contention for that.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys

import structlog

log = structlog.get_logger(__name__)

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)
SOLVE_ARENAS = 2


@functools.cache
def cap_malloc_arenas(arenas: int = SOLVE_ARENAS) -> bool:
    """Cap glibc's heap arenas for threads started from now on (once per process). A no-op, returning
    False, off glibc or where the user set ``MALLOC_ARENA_MAX`` (their choice stands)."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        done = bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    log.debug("malloc_arenas_capped", arenas=arenas, done=done)
    return done
