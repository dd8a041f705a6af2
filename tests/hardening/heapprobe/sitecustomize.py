"""Loaded at start-up by a cors-edge under test (its PYTHONPATH holds this directory).

On SIGUSR2 the edge collects its own garbage and reports its heap on stderr, so a test
can measure memory of the proxy process after a real collection there (a collection in
the test process frees nothing in the proxy). Does nothing unless asked to by the
environment; cors-edge itself is unchanged.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from types import FrameType

PREFIX = "heap-probe:"


def _report(signum: int, frame: FrameType | None) -> None:
    unreachable = gc.collect()
    blocks = sys.getallocatedblocks()  # every live allocation of the interpreter
    print(f"{PREFIX} collected {unreachable} blocks {blocks}", file=sys.stderr, flush=True)


if os.environ.get("CORS_EDGE_TEST_HEAP_PROBE") == "1":
    signal.signal(signal.SIGUSR2, _report)
