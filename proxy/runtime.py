"""The process's runtime set-up: the event loop, the memory allocator, the collector.

All are process-wide and done once: the loop and the allocator before the event loop
starts, the collector's freeze once the service is listening.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc


def install_event_loop_policy() -> str:
    """Use uvloop when importable; returns which loop is in use."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def keep_freed_memory(threshold: int = 8 * 1024 * 1024) -> bool:
    """Ask glibc to keep up to ``threshold`` bytes of freed heap instead of handing it
    back to the kernel after every large free: a streamed body allocates and frees a
    buffer per piece, and the trim-and-grow cycle (brk) cost a third of the proxy's CPU
    on chunked downloads. Same as MALLOC_TRIM_THRESHOLD_; a no-op off glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold = -1
    return bool(mallopt(m_trim_threshold, threshold))


# Container allocations between two young-generation collections (CPython: 700). Each
# collection walks every young object still alive, which under load is mostly the
# in-flight requests' (transports, protocols, futures): walked 10x less often, the
# collector's share of a proxied request drops (py-spy --native, benchmarks/README.md).
# Only reference cycles wait longer to be freed: at most this many more allocations.
YOUNG_THRESHOLD = 7000


def tune_collector() -> int:
    """Move every object alive now (modules, aiohttp, the loaded policy) out of the
    cyclic collector's sight, so the collections requests trigger never walk them
    again, and collect the young generation less often; returns how many objects were
    frozen. Call it once, after start-up: what is frozen is never collected."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
    return gc.get_freeze_count()
