"""The parent-worker control channel (proxy/control.py) over a real socketpair."""

from __future__ import annotations

import asyncio
import socket

import pytest

from proxy.control import ChannelClosed, Message, ParentChannel, WorkerChannel


class FakeService:
    """The worker's side as the channel sees it: records what it was told."""

    def __init__(self, fail_prepare: str | None = None) -> None:
        self.fail_prepare = fail_prepare
        self.calls: list[tuple[str, int]] = []

    async def prepare(self, generation: int, snapshot: str) -> None:
        if self.fail_prepare:
            raise ValueError(self.fail_prepare)
        self.calls.append(("prepare", generation))

    def commit(self, generation: int) -> None:
        self.calls.append(("commit", generation))

    def abort(self, generation: int) -> None:
        self.calls.append(("abort", generation))

    def state(self) -> Message:
        return {"ready": True, "generation": 7, "in_flight": 3}

    def parent_stop(self, hurry: bool) -> None:
        self.calls.append(("stop", int(hurry)))


async def pair(
    service: FakeService,
) -> tuple[ParentChannel, WorkerChannel, list[Message], asyncio.Event, asyncio.Task[None]]:
    parent_end, child_end = socket.socketpair()
    events: list[Message] = []
    parent = ParentChannel(events.append)
    await parent.attach(parent_end)
    worker = WorkerChannel(service)
    await worker.open(child_end.detach())
    lost = asyncio.Event()
    task = asyncio.create_task(worker.serve(lost.set))
    return parent, worker, events, lost, task


async def test_two_phase_reload_and_state() -> None:
    service = FakeService()
    parent, worker, events, lost, task = await pair(service)
    assert await parent.request({"op": "prepare", "generation": 2, "snapshot": "x"}, 5) == {
        "id": 1,
        "ok": True,
    }
    assert (await parent.request({"op": "commit", "generation": 2}, 5))["ok"] is True
    state = await parent.request({"op": "state"}, 5)
    assert state["generation"] == 7 and state["in_flight"] == 3
    assert service.calls == [("prepare", 2), ("commit", 2)]
    worker.announce_ready(2)
    while not events:
        await asyncio.sleep(0.01)
    assert events == [{"event": "ready", "generation": 2}]
    await parent.close()
    await asyncio.wait_for(lost.wait(), 5)  # the parent went away: the worker is told
    await task


async def test_a_failed_prepare_is_answered_not_raised() -> None:
    parent, _, _, _, task = await pair(FakeService(fail_prepare="routes[0].origins: bad"))
    reply = await parent.request({"op": "prepare", "generation": 2, "snapshot": "x"}, 5)
    assert reply["ok"] is False and "routes[0].origins: bad" in reply["error"]
    reply = await parent.request({"op": "nonsense"}, 5)
    assert reply["ok"] is False and "unknown op" in reply["error"]
    await parent.close()
    await task


async def test_a_request_to_a_gone_worker_fails_at_once() -> None:
    parent, _, _, lost, task = await pair(FakeService())
    task.cancel()  # the worker stopping on its own is not "parent gone"
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not lost.is_set()
    await parent.close()
    with pytest.raises(ChannelClosed):
        await parent.request({"op": "state"}, 5)


async def test_stop_is_asked_over_the_channel() -> None:
    service = FakeService()
    parent, _, _, _, task = await pair(service)
    assert (await parent.request({"op": "stop"}, 5))["ok"] is True
    assert (await parent.request({"op": "stop", "hurry": True}, 5))["ok"] is True
    assert service.calls == [("stop", 0), ("stop", 1)]
    await parent.close()
    await task
