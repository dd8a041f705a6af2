"""The process's runtime set-up: the event loop and the memory allocator.

Both are process-wide and done once, before the event loop starts.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util


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
