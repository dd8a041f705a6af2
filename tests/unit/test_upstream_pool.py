"""proxy/upstream_pool.py: keep-alive reuse, the bounded wait, the stale-connection retry,
UNIX sockets and names; against canned raw-socket upstreams."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from proxy.policy import Limits, Timeouts
from proxy.upstream_errors import ConnectFailed, ConnectTimeout, Disconnected, PoolTimeout
from proxy.upstream_parse import HeadLimits
from proxy.upstream_pool import UpstreamPool
from proxy.upstream_request import UpstreamTarget
from tests.differential.canned import CannedServer, Reply

HOST = [("Host", "app.test")]


def ok(body: bytes = b"ok") -> Reply:
    return Reply((b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body),))


def pool_for(url: str, **changes: float) -> UpstreamPool:
    timeouts = Timeouts(connect=2, read=5, upstream_idle=changes.pop("idle", 30.0))
    if "wait" in changes:
        timeouts = Timeouts(
            connect=2, read=5, upstream_idle=timeouts.upstream_idle, pool_wait=changes.pop("wait")
        )
    limits = Limits(max_upstream_connections=int(changes.pop("max", 100)))
    return UpstreamPool.for_config(url, timeouts, limits)


@asynccontextmanager
async def canned(*replies: Reply, unix_path: str | None = None) -> AsyncIterator[CannedServer]:
    server = await CannedServer(list(replies), unix_path=unix_path).start()
    try:
        yield server
    finally:
        await server.stop()


async def get(pool: UpstreamPool, method: str = "GET", body: bytes | None = None) -> bytes:
    response = await pool.request(method, "/", HOST, body)
    try:
        return await response.read()
    finally:
        response.release()


async def test_keep_alive_connections_are_reused() -> None:
    async with canned(ok(b"1"), ok(b"2"), ok(b"3")) as server:
        pool = pool_for(server.url)
        assert [await get(pool) for _ in range(3)] == [b"1", b"2", b"3"]
        assert server.connections == 1 and pool.idle_count == 1
        await pool.close()


async def test_idle_connections_expire() -> None:
    async with canned(ok(b"1"), ok(b"2")) as server:
        pool = pool_for(server.url, idle=0.05)
        await get(pool)
        await asyncio.sleep(0.1)  # longer than the idle timeout, however loaded the box
        await get(pool)
        assert server.connections == 2
        await pool.close()


async def test_waiting_for_a_connection_is_bounded() -> None:
    async with canned(ok(b"held"), ok(b"next")) as server:
        pool = pool_for(server.url, max=1, wait=0.2)
        held = await pool.request("GET", "/", HOST)
        with pytest.raises(PoolTimeout) as caught:
            await pool.request("GET", "/", HOST)
        assert caught.value.status == 503
        assert await held.read() == b"held"
        held.release()
        assert await get(pool) == b"next"
        assert server.connections == 1
        await pool.close()


async def test_a_released_connection_goes_to_the_first_waiter() -> None:
    async with canned(ok(b"a"), ok(b"b"), ok(b"c")) as server:
        pool = pool_for(server.url, max=1, wait=30)
        held = await pool.request("GET", "/", HOST)
        order: list[str] = []

        async def waiter(name: str) -> None:
            await get(pool)
            order.append(name)

        tasks = [asyncio.create_task(waiter(name)) for name in ("first", "second")]
        await asyncio.sleep(0.05)
        assert not any(task.done() for task in tasks)
        await held.read()
        held.release()
        await asyncio.gather(*tasks)
        assert order == ["first", "second"] and server.connections == 1
        await pool.close()


async def test_a_closed_connection_frees_its_slot_for_a_waiter() -> None:
    closing = Reply((b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na",))
    async with canned(closing, ok(b"b")) as server:
        pool = pool_for(server.url, max=1, wait=30)
        held = await pool.request("GET", "/", HOST)
        waiting = asyncio.create_task(get(pool))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await held.read()
        held.release()  # not reusable: closed, and its slot goes to the waiter
        assert await waiting == b"b"
        assert server.connections == 2 and pool.open_count == 1
        await pool.close()


async def test_a_failed_connect_frees_its_slot() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pool = pool_for(f"http://127.0.0.1:{port}", max=1, wait=0.5)
    for _ in range(3):
        with pytest.raises(ConnectFailed):
            await pool.request("GET", "/", HOST)
    assert pool.open_count == 0
    await pool.close()


async def test_a_connect_that_hangs_times_out() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):  # fill the accept queue; later SYNs are dropped
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        pool = UpstreamPool(
            UpstreamTarget("127.0.0.1", port),
            max_connections=4,
            connect_timeout=0.3,
            read_timeout=1,
            idle_timeout=1,
            pool_wait=1,
            head_limits=HeadLimits(),
        )
        with pytest.raises(ConnectTimeout) as caught:
            await pool.request("GET", "/", HOST)
        assert caught.value.status == 504 and pool.open_count == 0
        await pool.close()
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def test_a_stale_pooled_connection_is_retried_once_for_idempotent_requests() -> None:
    # The second request meets a connection the upstream drops without answering.
    async with canned(ok(b"1"), Reply((), True), ok(b"retried")) as server:
        pool = pool_for(server.url)
        await get(pool)
        assert await get(pool, "PUT", b"same body again") == b"retried"
        assert server.received[1] == server.received[2]  # replayed byte for byte
        assert server.connections == 2
        await pool.close()


async def test_a_stale_pooled_connection_is_not_retried_for_post() -> None:
    async with canned(ok(b"1"), Reply((), True), ok(b"unused")) as server:
        pool = pool_for(server.url)
        await get(pool)
        with pytest.raises(Disconnected):
            await get(pool, "POST", b"once only")
        assert len(server.received) == 2
        await pool.close()


async def test_a_fresh_connection_closed_without_answer_is_not_retried() -> None:
    async with canned(Reply((), True), ok(b"unused")) as server:
        pool = pool_for(server.url)
        with pytest.raises(Disconnected):
            await get(pool)
        assert len(server.received) == 1
        await pool.close()


async def test_unix_socket_upstream(tmp_path: Path) -> None:
    path = str(tmp_path / "app.sock")
    async with canned(ok(b"over unix"), unix_path=path) as server:
        pool = pool_for(server.url)
        assert await get(pool) == b"over unix"
        await pool.close()


async def test_a_host_name_is_resolved() -> None:
    async with canned(ok(b"by name")) as server:
        pool = pool_for(f"http://localhost:{server.port}")
        assert await get(pool) == b"by name"  # ::1 may come first and refuse: tried in turn
        await pool.close()


async def test_close_fails_waiters_and_refuses_new_requests() -> None:
    async with canned(ok(b"held")) as server:
        pool = pool_for(server.url, max=1, wait=30)
        held = await pool.request("GET", "/", HOST)
        waiting = asyncio.create_task(pool.request("GET", "/", HOST))
        await asyncio.sleep(0.05)
        await pool.close()
        with pytest.raises(ConnectFailed):
            await waiting
        with pytest.raises(ConnectFailed):
            await pool.request("GET", "/", HOST)
        held.release()
