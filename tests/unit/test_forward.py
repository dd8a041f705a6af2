"""proxy/forward.py: sending upstream, and the one typed failure, over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.base_protocol import BaseProtocol
from multidict import CIMultiDict

from proxy.bodies import limited_body
from proxy.forward import (
    BodyTooLarge,
    ForwardFailure,
    Upstream,
    UpstreamAddress,
    read_small_body,
)
from proxy.policy import Limits, Timeouts
from proxy.records import ErrorKind, RequestError

from .inprocess import closed_port

Raw = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_upstream(serve: Raw) -> AsyncIterator[str]:
    """An upstream that speaks (or fails to speak) HTTP byte by byte."""
    handlers: list[asyncio.Task[None]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        await serve(reader, writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        if handlers:  # each ends once the client side has closed its connection
            await asyncio.wait(handlers, timeout=10)
        await server.wait_closed()


@contextlib.asynccontextmanager
async def upstream_for(url: str, timeouts: Timeouts | None = None) -> AsyncIterator[Upstream]:
    upstream = Upstream(url, timeouts or Timeouts(), Limits())
    await upstream.start()
    try:
        yield upstream
    finally:
        await upstream.close()


async def failure_of(upstream: Upstream, body: object = None) -> ForwardFailure:
    with pytest.raises(ForwardFailure) as caught:
        await upstream.send("POST" if body else "GET", "/x", CIMultiDict(), body)  # type: ignore[arg-type]
    return caught.value


@contextlib.asynccontextmanager
async def client_body(data: bytes, *, eof: bool = True) -> AsyncIterator[aiohttp.StreamReader]:
    """A request body as aiohttp's server hands it over: a StreamReader on a live
    connection (fed by hand here; the connection only has to be open)."""
    loop = asyncio.get_running_loop()
    protocol = BaseProtocol(loop)
    ours, theirs = socket.socketpair()
    transport, _ = await loop.connect_accepted_socket(lambda: protocol, ours)
    reader = aiohttp.StreamReader(protocol, 2**16, loop=loop)
    if data:
        reader.feed_data(data)
    if eof:
        reader.feed_eof()
    try:
        yield reader
    finally:
        transport.close()
        theirs.close()


def test_the_raw_target_goes_upstream_byte_for_byte() -> None:
    upstream = Upstream("http://127.0.0.1:5000/", Timeouts(), Limits())
    assert str(upstream.url("/a%2Fb/../c?q=%20&x")) == "http://127.0.0.1:5000/a%2Fb/../c?q=%20&x"


def test_upstream_addresses() -> None:
    assert UpstreamAddress.parse("http://app:8000/") == UpstreamAddress("http://app:8000", None)
    assert UpstreamAddress.parse("unix:/run/app.sock") == UpstreamAddress(
        "http://upstream", "/run/app.sock"
    )


async def test_a_refused_connection_is_connect_502() -> None:
    async with upstream_for(f"http://127.0.0.1:{closed_port()}") as upstream:
        failure = await failure_of(upstream)
    assert (failure.error, failure.status, failure.message) == (
        RequestError(ErrorKind.CONNECT),
        502,
        "upstream unavailable",
    )
    assert not failure.close


async def test_a_silent_close_is_disconnected_502() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    async with raw_upstream(hang_up) as url, upstream_for(url) as upstream:
        failure = await failure_of(upstream)
    assert (failure.error.kind, failure.status) == (ErrorKind.DISCONNECTED, 502)


async def test_no_answer_in_time_is_timeout_504() -> None:
    answered = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await answered.wait()
        writer.close()

    async with raw_upstream(silent) as url, upstream_for(url, Timeouts(read=0.2)) as upstream:
        failure = await failure_of(upstream)
        answered.set()
    assert (failure.error.kind, failure.status, failure.message) == (
        ErrorKind.TIMEOUT,
        504,
        "upstream timed out",
    )


async def test_a_body_past_the_limit_is_the_clients_413() -> None:
    async def sink(request: web.BaseRequest) -> web.Response:
        await request.read()
        return web.Response()

    runner = web.ServerRunner(web.Server(sink))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with upstream_for(url) as upstream, client_body(b"x" * 5000) as content:
            failure = await failure_of(upstream, limited_body(content, 1000, Timeouts()))
    finally:
        await runner.cleanup()
    assert failure.error == RequestError(ErrorKind.BODY_TOO_LARGE) and failure.error.is_client
    assert (failure.status, failure.close) == (413, False)


async def test_a_client_silent_mid_body_is_its_408_and_closes() -> None:
    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.read()
        writer.close()

    async with (
        raw_upstream(sink) as url,
        upstream_for(url) as upstream,
        client_body(b"abc", eof=False) as content,
    ):
        failure = await failure_of(
            upstream, limited_body(content, None, Timeouts(client_body=0.05))
        )
    assert (failure.error.kind, failure.status, failure.close) == (
        ErrorKind.CLIENT_BODY_TIMEOUT,
        408,
        True,
    )


async def test_small_bodies_are_read_whole_or_refused() -> None:
    async with client_body(b"0123456789") as content:
        assert await read_small_body(content, 10, Timeouts(client_body=1.0)) == b"0123456789"
    with pytest.raises(ForwardFailure) as short:
        async with client_body(b"012") as content:
            await read_small_body(content, 10, Timeouts(client_body=1.0))
    assert (short.value.error.kind, short.value.status, short.value.close) == (
        ErrorKind.CLIENT_BODY_INCOMPLETE,
        400,
        True,
    )
    with pytest.raises(ForwardFailure) as stalled:
        async with client_body(b"012", eof=False) as content:
            await read_small_body(content, 10, Timeouts(client_body=0.05))
    assert (stalled.value.error.kind, stalled.value.status) == (ErrorKind.CLIENT_BODY_TIMEOUT, 408)


async def test_a_response_broken_off_mid_body_is_an_aborted_failure() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        await writer.drain()
        writer.close()

    async with raw_upstream(cut) as url, upstream_for(url) as upstream:
        response = await upstream.send("GET", "/x", CIMultiDict(), None)
        try:
            received = b""
            with pytest.raises(ForwardFailure) as caught:
                while chunk := await response.next_chunk():
                    received += chunk
        finally:
            response.release()
    assert received == b"x" * 10
    assert caught.value.error == RequestError(ErrorKind.PAYLOAD, aborted=True)
    assert caught.value.error.label == "aborted:payload"


async def test_bodies_read_whole_or_by_pieces_and_head_ends() -> None:
    async def app(request: web.BaseRequest) -> web.Response:
        return web.Response(body=b"y" * 300_000, headers={"X-Up": "1"})

    runner = web.ServerRunner(web.Server(app))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with upstream_for(f"http://127.0.0.1:{runner.addresses[0][1]}") as upstream:
            whole = await upstream.send("GET", "/", CIMultiDict(), None)
            assert (whole.status, whole.reason, whole.headers["X-Up"]) == (200, "OK", "1")
            assert whole.content_length == 300_000 and await whole.read() == b"y" * 300_000
            whole.release()
            pieces = await upstream.send("GET", "/", CIMultiDict(), None)
            received = b""
            while chunk := await pieces.next_chunk():
                received += chunk
            pieces.release()
            assert received == b"y" * 300_000
            head = await upstream.send("HEAD", "/", CIMultiDict(), None)
            async with asyncio.timeout(5):  # aiohttp's shared empty payload must end
                assert await head.next_chunk() == b""
            head.release()
    finally:
        await runner.cleanup()


async def test_websocket_connect_failures_say_what_the_client_gets() -> None:
    async def refuse(request: web.BaseRequest) -> web.Response:
        return web.Response(status=403)

    runner = web.ServerRunner(web.Server(refuse))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with upstream_for(f"http://127.0.0.1:{runner.addresses[0][1]}") as upstream:
            with pytest.raises(ForwardFailure) as refused:
                await upstream.connect_websocket("/ws", CIMultiDict(), [])
    finally:
        await runner.cleanup()
    assert (refused.value.status, refused.value.message) == (403, "upstream refused the WebSocket")
    async with upstream_for(f"http://127.0.0.1:{closed_port()}") as upstream:
        with pytest.raises(ForwardFailure) as down:
            await upstream.connect_websocket("/ws", CIMultiDict(), [])
    assert (down.value.error.kind, down.value.status) == (ErrorKind.CONNECT, 502)


async def test_probe() -> None:
    async with upstream_for(f"http://127.0.0.1:{closed_port()}") as upstream:
        assert await upstream.probe() is False
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with upstream_for(f"http://127.0.0.1:{port}") as upstream:
            assert await upstream.probe() is True
    finally:
        server.close()
        await server.wait_closed()


async def test_sending_before_start_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError):
        await Upstream("http://127.0.0.1:1", Timeouts(), Limits()).send(
            "GET", "/", CIMultiDict(), None
        )


async def test_a_client_body_failing_after_an_early_answer_is_its_aborted_failure() -> None:
    """The upstream answers (and streams) before the body is in; then the client's body
    goes past the limit: an aborted response, the client's fault, never a raw exception."""
    answered = asyncio.Event()

    async def early(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n")
        await writer.drain()
        with contextlib.suppress(ConnectionError):
            await reader.read()
        writer.close()

    async def body() -> AsyncIterator[bytes]:
        yield b"first"
        await answered.wait()
        raise BodyTooLarge

    async with raw_upstream(early) as url, upstream_for(url) as upstream:
        headers = CIMultiDict({"Host": "t"})
        response = await upstream.send("POST", "/x", headers, body())
        try:
            assert await response.next_chunk() == b"wiki"
            answered.set()
            with pytest.raises(ForwardFailure) as caught:
                while await response.next_chunk():
                    pass
        finally:
            response.release()
    assert caught.value.error == RequestError(ErrorKind.BODY_TOO_LARGE, aborted=True)
    assert caught.value.status == 413 and caught.value.error.is_client
