"""proxy.pool: the HTTP pool's slots, and the bounded wait for one."""

from __future__ import annotations

import asyncio

import pytest

from proxy.pool import PoolBusy, Slots


async def test_a_full_pool_refuses_after_the_wait() -> None:
    slots = Slots(2)
    first, second = await slots.acquire(0.05), await slots.acquire(0.05)
    with pytest.raises(PoolBusy):
        await slots.acquire(0.05)
    first.release()
    third = await slots.acquire(0.05)  # the freed slot is handed on
    for slot in (second, third):
        slot.release()


async def test_a_waiter_gets_the_slot_released_meanwhile() -> None:
    slots = Slots(1)
    held = await slots.acquire(None)
    waiter = asyncio.ensure_future(slots.acquire(30))
    await asyncio.sleep(0)
    assert not waiter.done()
    held.release()
    (await asyncio.wait_for(waiter, 30)).release()


async def test_release_is_idempotent() -> None:
    slots = Slots(1)
    slot = await slots.acquire(None)
    slot.release()
    slot.release()  # a second release must not mint a slot
    again = await slots.acquire(0.05)
    with pytest.raises(PoolBusy):
        await slots.acquire(0.05)
    again.release()
