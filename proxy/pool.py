"""The upstream connection budget: a bounded wait for one of the HTTP pool's slots.

Every forwarded HTTP request holds one slot from before it is sent until its response
is released; at most ``limits.max_upstream_connections`` are held at once (the
connector's own limit is the same number, so it never queues on its own). A request
that cannot get a slot within ``timeouts.pool_wait`` seconds is answered 503 instead of
waiting for ever behind stuck ones. WebSockets never take a slot: they have their own
connections and their own count (``limits.max_websockets``, :mod:`proxy.websocket`).

Pure asyncio, no aiohttp: the planned upstream client honours the same budget.
"""

from __future__ import annotations

import asyncio


class PoolBusy(Exception):
    """No upstream connection became free within ``timeouts.pool_wait``."""


class Slots:
    """A counting semaphore whose waits are bounded."""

    __slots__ = ("_free", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._free = asyncio.Semaphore(size)

    async def acquire(self, wait: float | None) -> Slot:
        """A slot, waiting at most ``wait`` seconds for one; raises :class:`PoolBusy`."""
        if not self._free.locked():
            await self._free.acquire()  # free now: no timer needed (the hot path)
            return Slot(self._free)
        try:
            async with asyncio.timeout(wait):
                await self._free.acquire()
        except TimeoutError:
            raise PoolBusy from None
        return Slot(self._free)


class Slot:
    """One held slot; :meth:`release` gives it back (once, however often it is called)."""

    __slots__ = ("_free",)

    def __init__(self, free: asyncio.Semaphore) -> None:
        self._free: asyncio.Semaphore | None = free

    def release(self) -> None:
        if self._free is not None:
            self._free.release()
            self._free = None
