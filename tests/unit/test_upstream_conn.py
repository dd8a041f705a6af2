"""proxy/upstream_conn.py over real loopback sockets: flow control both ways, the
idle-read timer, the body sender (100-continue, early answers, client-body faults)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import uvloop

from proxy.upstream_conn import READ_HIGH, UpstreamConnection
from proxy.upstream_errors import Disconnected, ReadTimeout
from proxy.upstream_parse import HeadLimits

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


@asynccontextmanager
async def connected(handler: Handler) -> AsyncIterator[UpstreamConnection]:
    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(guarded, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(
        lambda: UpstreamConnection(loop, HeadLimits()), "127.0.0.1", port
    )
    try:
        yield conn
    finally:
        conn.close()
        server.close()


async def until(condition: Callable[[], bool]) -> None:
    """Wait for an event the code under test signals only through its state."""
    async with asyncio.timeout(20):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_slow_reader_pauses_the_upstream_and_loses_nothing() -> None:
    size = 16 * 1024 * 1024
    written = asyncio.Event()

    async def big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(size // 65536):
            writer.write(b"z" * 65536)
            await writer.drain()
        written.set()
        await reader.read()

    async with connected(big) as conn:
        conn.begin(head_only=False, read_timeout=10)
        conn.start(GET, None, chunked=False)
        await conn.response_head()
        await until(lambda: conn.reading_paused)
        await asyncio.sleep(0.05)  # the upstream keeps trying; the buffer must not grow
        assert conn.buffered <= READ_HIGH + 512 * 1024
        assert not written.is_set()
        total = 0
        while piece := await conn.read_chunk():
            total += len(piece)
        assert total == size and written.is_set()
        assert conn.finish()


async def test_a_slow_upstream_holds_back_the_client_body() -> None:
    pulled = 0
    release = asyncio.Event()
    received = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(1024):  # 64 MiB at most
            pulled += 65536
            yield b"u" * 65536

    async def sluggish(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal received
        await reader.readuntil(b"\r\n\r\n")
        await release.wait()
        while received < 1024 * 65536:
            received += len(await reader.read(1 << 20))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with connected(sluggish) as conn:
        conn.begin(head_only=False, read_timeout=30)
        head = b"PUT / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % (1024 * 65536)
        conn.start(head, body(), chunked=False)
        await until(lambda: conn.writing_paused)
        await asyncio.sleep(0.05)
        assert pulled < 32 * 1024 * 1024  # bounded by socket buffers, not the body's size
        release.set()
        assert (await conn.response_head()).status == 200
        assert received == 1024 * 65536 and conn.finish()


async def test_silence_before_the_head_is_a_read_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with connected(silent) as conn:
        conn.begin(head_only=False, read_timeout=0.2)
        conn.start(GET, None, chunked=False)
        with pytest.raises(ReadTimeout):
            await conn.response_head()
        assert not conn.finish()


async def test_silence_mid_body_is_a_read_timeout_but_a_trickle_is_not() -> None:
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n")
        for _ in range(30):  # 1.5 s in all, never 1 s without a byte
            writer.write(b"t")
            await writer.drain()
            await asyncio.sleep(0.05)
        await reader.read()  # then silence: 10 bytes never come

    async with connected(trickle) as conn:
        conn.begin(head_only=False, read_timeout=1.0)
        conn.start(GET, None, chunked=False)
        await conn.response_head()
        got = b""
        with pytest.raises(ReadTimeout):
            while piece := await conn.read_chunk():
                got += piece
        assert got == b"t" * 30


async def test_a_head_trickling_in_is_not_a_read_timeout() -> None:
    async def slow_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for n in range(30):  # 1.5 s for the head, never 1 s without a byte
            writer.write(b"X-%d: 1\r\n" % n)
            await writer.drain()
            await asyncio.sleep(0.05)
        writer.write(b"Content-Length: 0\r\n\r\n")
        await reader.read()

    async with connected(slow_head) as conn:
        conn.begin(head_only=False, read_timeout=1.0)
        conn.start(GET, None, chunked=False)
        head = await conn.response_head()
        assert len(head.headers) == 31


async def test_bytes_while_idle_close_the_connection() -> None:
    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"unasked")
        await reader.read()

    async with connected(chatty) as conn:
        conn.begin(head_only=False, read_timeout=5)
        conn.start(GET, None, chunked=False)
        await conn.response_head()
        assert await conn.read_all() == b"ok"
        assert conn.finish()
        await until(lambda: conn.closed)


async def test_100_continue_sends_the_body_after_the_go_ahead() -> None:
    async def continuing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"Expect: 100-continue" in head
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = await reader.readexactly(6)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n" + body)
        await reader.read()

    async def body() -> AsyncIterator[bytes]:
        yield b"abc"
        yield b"def"

    async with connected(continuing) as conn:
        conn.begin(head_only=False, read_timeout=5)
        head = b"PUT / HTTP/1.1\r\nContent-Length: 6\r\nExpect: 100-continue\r\n\r\n"
        conn.start(head, body(), chunked=False, expect_continue=True)
        assert (await conn.response_head()).status == 200
        assert await conn.read_all() == b"abcdef"


async def test_100_continue_refused_sends_no_body() -> None:
    pulled = []

    async def refusing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n")
        await reader.read()

    async def body() -> AsyncIterator[bytes]:
        pulled.append(1)
        yield b"never"

    async with connected(refusing) as conn:
        conn.begin(head_only=False, read_timeout=5)
        head = b"PUT / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        conn.start(head, body(), chunked=False, expect_continue=True)
        assert (await conn.response_head()).status == 417
        assert await conn.read_all() == b""
        await asyncio.sleep(0)
        assert pulled == [] and not conn.finish()  # the body was owed: never reused


async def test_an_early_answer_while_uploading_is_the_answer() -> None:
    async def early(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 413 Too Large\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbig")
        await writer.drain()

    async def body() -> AsyncIterator[bytes]:
        for _ in range(4096):
            yield b"b" * 65536
            await asyncio.sleep(0)

    async with connected(early) as conn:
        conn.begin(head_only=False, read_timeout=5)
        conn.start(b"POST / HTTP/1.1\r\nContent-Length: 268435456\r\n\r\n", body(), chunked=False)
        head = await conn.response_head()
        assert head.status == 413 and await conn.read_all() == b"big"
        assert not conn.finish()


async def test_a_failing_client_body_fails_the_exchange_with_its_own_error() -> None:
    class Stalled(Exception):
        pass

    async def reader_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async def body() -> AsyncIterator[bytes]:
        yield b"part"
        raise Stalled

    async with connected(reader_only) as conn:
        conn.begin(head_only=False, read_timeout=5)
        conn.start(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", body(), chunked=True)
        with pytest.raises(Stalled):
            await conn.response_head()
        assert not conn.finish()


async def test_writing_to_a_closed_connection_is_disconnected() -> None:
    async def closer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        return

    async with connected(closer) as conn:
        await until(lambda: conn.closed)
        conn.begin(head_only=False, read_timeout=5)
        with pytest.raises(Disconnected) as caught:
            conn.start(GET, None, chunked=False)
        assert caught.value.nothing_received


@pytest.mark.parametrize(
    "scenario",
    [
        test_a_slow_reader_pauses_the_upstream_and_loses_nothing,
        test_a_slow_upstream_holds_back_the_client_body,
        test_a_head_trickling_in_is_not_a_read_timeout,
        test_an_early_answer_while_uploading_is_the_answer,
    ],
)
def test_on_uvloop(scenario: Callable[[], Awaitable[None]]) -> None:
    """The edge runs on uvloop, whose transports are not asyncio's: the same scenarios."""

    async def run() -> None:
        await scenario()

    uvloop.run(run())
