"""WebSocket relaying under attack and failure (issue 10: defects 3, 4, 5 and 14).

Real cors-edge processes, a real aiohttp WebSocket upstream (or a raw-socket one for
frames no library would send) on loopback, real sockets; RSS is read with psutil.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator

import aiohttp
import psutil
import pytest

from tests.e2e.test_streaming_e2e import RssWatch
from tests.support import Edge, EdgeFactory

from .conftest import assert_no_tracebacks
from .wsupstream import (
    BombUpstream,
    WsUpstream,
    close_code_after,
    deflate_bomb,
    frame,
    raw_ws_connect,
)

POLICY = """
routes:
  - path: /ws/**
    origins: [https://app.example.com]
"""


@pytest.fixture
async def ws_upstream() -> AsyncIterator[WsUpstream]:
    server = await WsUpstream().start()
    yield server
    await server.stop()


def _ws_url(edge: Edge, path: str) -> str:
    return f"ws://127.0.0.1:{edge.port}{path}"


# --- a failed upstream handshake (defect 14) -----------------------------------------


@pytest.mark.parametrize(("path", "expected"), [("/ws/plain", 502), ("/ws/denied", 403)])
async def test_failed_upstream_handshake_is_not_relayed_as_success(
    edge_factory: EdgeFactory, ws_upstream: WsUpstream, path: str, expected: int
) -> None:
    """An upstream answering an upgrade with 200 is not a WebSocket: 502, never 200.
    Its deliberate refusals (4xx) keep their status."""
    edge = edge_factory(POLICY, upstream_url=ws_upstream.url)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await session.ws_connect(
                _ws_url(edge, path), headers={"Origin": "https://app.example.com"}
            )
    assert caught.value.status == expected
    if expected == 502:
        edge.stderr.wait_for(r"ERROR .*did not accept a WebSocket upgrade")
    assert_no_tracebacks(edge)


# --- credentials on cross-origin upgrades (defect 5) ---------------------------------

CREDENTIALS_POLICY = """
routes:
  - path: /ws/private/**
    origins: [https://app.example.com]
    supports_credentials: true
  - path: /ws/anon/**
    origins: [https://app.example.com]
  - path: /ws/open/**
    origins: "*"
  - path: /ws/loose/**
    origins: [https://app.example.com]
    enforce: false
"""
SECRETS = {"Cookie": "session=victim-42", "Authorization": "Bearer victim-token"}


async def _handshake_headers(edge: Edge, path: str, origin: str | None) -> dict[str, str]:
    headers = {**SECRETS, "Host": "api.example.com"}
    if origin is not None:
        headers["Origin"] = origin
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(_ws_url(edge, path), headers=headers) as ws,
    ):
        seen: dict[str, str] = json.loads(await ws.receive_str(timeout=10))
    return seen


@pytest.mark.parametrize(
    ("prefix", "origin", "carried"),
    [
        ("/ws/private", "https://app.example.com", True),  # credentials granted
        ("/ws/private", "http://api.example.com", True),  # same-origin
        ("/ws/private", None, True),  # no Origin: not a browser
        ("/ws/anon", "https://app.example.com", False),  # no supports_credentials
        ("/ws/open", "https://evil.test", False),  # origins: "*"
        ("/ws/open", "http://api.example.com", True),  # same-origin on a "*" route
        ("/ws/loose", "https://evil.test", False),  # refused, enforce: false
        ("/ws/unrouted", "https://evil.test", False),  # no route covers it
        ("/ws/unrouted", "http://api.example.com", True),  # no route, same-origin
    ],
)
async def test_cross_origin_upgrade_carries_no_credentials_unless_granted(
    edge_factory: EdgeFactory,
    ws_upstream: WsUpstream,
    prefix: str,
    origin: str | None,
    carried: bool,
) -> None:
    edge = edge_factory(CREDENTIALS_POLICY, upstream_url=ws_upstream.url)
    seen = await _handshake_headers(edge, prefix + "/headers", origin)
    assert ("cookie" in seen, "authorization" in seen) == (carried, carried), seen
    if carried:
        assert seen["cookie"] == SECRETS["Cookie"]
    assert seen.get("origin") == origin  # the upstream still sees who is asking


async def test_routing_headers_do_not_reach_a_websocket_upstream_either(
    edge_factory: EdgeFactory, ws_upstream: WsUpstream
) -> None:
    """Defect 2 on the upgrade path: the same header hygiene as plain HTTP."""
    edge = edge_factory(CREDENTIALS_POLICY, upstream_url=ws_upstream.url)
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            _ws_url(edge, "/ws/private/headers"),
            headers={
                "Origin": "https://app.example.com",
                "SCRIPT_NAME": "/ws",
                "X-Forwarded-Prefix": "/ws",
                "Forwarded": "for=10.9.8.7",
                "X-Kept": "yes",
            },
        ) as ws,
    ):
        seen: dict[str, str] = json.loads(await ws.receive_str(timeout=10))
    assert seen.get("x-kept") == "yes"
    for name in ("script_name", "x-forwarded-prefix", "forwarded"):
        assert name not in seen, name


# --- message size, both hops, permessage-deflate (defect 3) --------------------------

ORIGIN = "https://app.example.com"
BOMB_INFLATED = 300 * 1024 * 1024  # ~300 KB on the wire
MAX_GROWTH = 64 * 1024 * 1024


@pytest.fixture(scope="module")
def bomb() -> bytes:
    payload = deflate_bomb(BOMB_INFLATED)
    assert 250_000 < len(payload) < 350_000
    return payload


async def test_compressed_bomb_from_the_client_is_refused_with_1009(
    edge_factory: EdgeFactory, ws_upstream: WsUpstream, bomb: bytes
) -> None:
    edge = edge_factory(POLICY, upstream_url=ws_upstream.url)
    reader, writer, head = await raw_ws_connect(edge.port, "/ws/echo", ORIGIN)
    try:
        assert head.startswith("HTTP/1.1 101"), head
        assert "permessage-deflate" in head  # the edge accepted compression
        with RssWatch(edge.process.pid) as watch:
            writer.write(frame(bomb, compressed=True, mask=True))
            await writer.drain()
            code = await asyncio.wait_for(close_code_after(reader, writer), 30)
    finally:
        writer.close()
    assert code == 1009
    print(f"client bomb: edge RSS grew {watch.growth / 1e6:.1f} MB")
    assert watch.growth < MAX_GROWTH, f"edge RSS grew {watch.growth / 1e6:.0f} MB"
    await _until(lambda: ws_upstream.close_codes)
    assert ws_upstream.close_codes == [1009]
    assert ws_upstream.received_sizes == []  # nothing of it reached the upstream
    assert_no_tracebacks(edge)


async def test_compressed_bomb_from_the_upstream_is_refused_with_1009(
    edge_factory: EdgeFactory, bomb: bytes
) -> None:
    upstream = await BombUpstream(bomb, BOMB_INFLATED).start()
    try:
        edge = edge_factory(POLICY, upstream_url=upstream.url)
        async with aiohttp.ClientSession() as session:
            with RssWatch(edge.process.pid) as watch:
                async with session.ws_connect(
                    _ws_url(edge, "/ws/bomb"), headers={"Origin": ORIGIN}, max_msg_size=0
                ) as ws:
                    message = await ws.receive(timeout=30)
                    assert message.type is aiohttp.WSMsgType.CLOSE, message
                    assert message.data == 1009
        print(f"upstream bomb: edge RSS grew {watch.growth / 1e6:.1f} MB")
        assert watch.growth < MAX_GROWTH, f"edge RSS grew {watch.growth / 1e6:.0f} MB"
        await _until(lambda: upstream.close_codes)
        assert upstream.close_codes == [1009]
        assert len(upstream.compressed) == 1
    finally:
        await upstream.stop()
    assert_no_tracebacks(edge)


@pytest.mark.parametrize(("size", "closed"), [(65536, False), (65537, True)])
async def test_message_size_limit_is_configurable(
    edge_factory: EdgeFactory, ws_upstream: WsUpstream, size: int, closed: bool
) -> None:
    edge = edge_factory(
        "limits: {max_websocket_message: 65536}\n" + POLICY, upstream_url=ws_upstream.url
    )
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            _ws_url(edge, f"/ws/big?size={size}"), headers={"Origin": ORIGIN}, max_msg_size=0
        ) as ws,
    ):
        message = await ws.receive(timeout=10)
        if closed:
            assert message.type is aiohttp.WSMsgType.CLOSE
            assert message.data == 1009
        else:
            assert message.type is aiohttp.WSMsgType.BINARY
            assert len(message.data) == size
            # And the client's way: one byte over is refused too.
            await ws.send_bytes(b"y" * (size + 1))
            answer = await ws.receive(timeout=10)
            assert answer.type is aiohttp.WSMsgType.CLOSE
            assert answer.data == 1009


async def test_a_fragmented_message_is_bounded_as_a_whole(
    edge_factory: EdgeFactory, ws_upstream: WsUpstream
) -> None:
    """Three 30 KB fragments, each under the 64 KiB bound, one 90 KB message: 1009."""
    edge = edge_factory(
        "limits: {max_websocket_message: 65536}\n" + POLICY, upstream_url=ws_upstream.url
    )
    reader, writer, head = await raw_ws_connect(edge.port, "/ws/echo", ORIGIN)
    try:
        assert head.startswith("HTTP/1.1 101"), head
        piece = b"p" * 30_000
        writer.write(frame(piece, opcode=0x2, compressed=False, mask=True, fin=False))
        writer.write(frame(piece, opcode=0x0, compressed=False, mask=True, fin=False))
        writer.write(frame(piece, opcode=0x0, compressed=False, mask=True, fin=True))
        await writer.drain()
        code = await asyncio.wait_for(close_code_after(reader, writer), 30)
    finally:
        writer.close()
    assert code == 1009
    await _until(lambda: ws_upstream.close_codes)
    assert ws_upstream.close_codes == [1009]
    assert ws_upstream.received_sizes == []


async def _until(predicate: object, timeout: float = 10.0) -> None:
    """Wait for a condition another task (the upstream's) makes true; a safety net only."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate() and asyncio.get_running_loop().time() < deadline:  # type: ignore[operator]
        await asyncio.sleep(0.05)


# --- shutdown says goodbye (defect 14) -----------------------------------------------


async def test_shutdown_closes_websockets_with_going_away(
    edge_factory: EdgeFactory, ws_upstream: WsUpstream
) -> None:
    edge = edge_factory(POLICY, "--grace", "5", upstream_url=ws_upstream.url)
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(_ws_url(edge, "/ws/echo"), headers={"Origin": ORIGIN}) as ws,
    ):
        await ws.send_str("hi")
        assert await ws.receive_str(timeout=10) == "echo:hi"
        edge.signal(signal.SIGTERM)
        message = await ws.receive(timeout=30)
        assert message.type is aiohttp.WSMsgType.CLOSE, message
        assert message.data == 1001
    await _until(lambda: ws_upstream.close_codes)
    assert ws_upstream.close_codes == [1001]
    assert edge.wait_exit(30) == 0
    assert_no_tracebacks(edge)


# --- WebSockets do not starve HTTP; idle sockets end; pool waits end (defect 4) -------

BUDGET_POLICY = """
timeouts: {pool_wait: 2}
limits: {max_upstream_connections: 4, max_websockets: 100}
routes:
  - path: /**
    origins: [https://app.example.com]
"""


async def test_idle_websockets_do_not_starve_http(
    edge_factory: EdgeFactory, ws_upstream: WsUpstream
) -> None:
    """100 idle WebSockets (25 times the HTTP pool) open; plain HTTP is still served,
    and the 101st socket is refused with 503 (limits.max_websockets)."""
    edge = edge_factory(BUDGET_POLICY, upstream_url=ws_upstream.url)
    # The test's own client must not be the bottleneck: no connection limit.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        sockets = [
            await asyncio.wait_for(
                session.ws_connect(_ws_url(edge, "/ws/idle"), headers={"Origin": ORIGIN}), 30
            )
            for _ in range(100)
        ]
        try:
            await _until(lambda: ws_upstream.opened == 100)
            assert ws_upstream.opened == 100
            rss = psutil.Process(edge.process.pid).memory_info().rss
            print(f"100 idle WebSockets: edge RSS {rss / 1e6:.1f} MB")
            for _ in range(8):  # twice the pool, one after the other
                async with asyncio.timeout(30), session.get(f"{edge.url}/http/ping") as response:
                    assert response.status == 200
                    assert await response.text() == "pong"
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                await session.ws_connect(_ws_url(edge, "/ws/idle"), headers={"Origin": ORIGIN})
            assert caught.value.status == 503
        finally:
            for ws in sockets:
                await ws.close()
    assert_no_tracebacks(edge)


async def test_waiting_for_a_busy_pool_ends_in_503(
    edge_factory: EdgeFactory, ws_upstream: WsUpstream
) -> None:
    """Every pooled connection is held by a stuck request: the next one gets a 503
    after timeouts.pool_wait, not an endless wait."""
    edge = edge_factory(BUDGET_POLICY, upstream_url=ws_upstream.url)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        stuck = [asyncio.ensure_future(session.get(f"{edge.url}/http/hold")) for _ in range(4)]
        try:
            await _until(lambda: ws_upstream.held == 4)
            assert ws_upstream.held == 4
            loop = asyncio.get_running_loop()
            started = loop.time()
            async with asyncio.timeout(60), session.get(f"{edge.url}/http/ping") as response:
                waited = loop.time() - started
                assert response.status == 503
                assert (await response.json())["status"] == 503
            assert waited >= 1.5  # it did wait for a free connection (pool_wait: 2) ...
            ws_upstream.release.set()
            for request in stuck:  # ... and the stuck ones were unharmed
                async with asyncio.timeout(30):
                    response = await request
                    assert response.status == 200
                    response.release()
        finally:
            ws_upstream.release.set()
            for request in stuck:
                request.cancel()
        async with session.get(f"{edge.url}/http/ping") as response:
            assert response.status == 200  # slots were given back
    edge.stderr.wait_for(r"ERROR .*busy for timeouts.pool_wait")
    assert_no_tracebacks(edge)


async def test_idle_websocket_is_closed_after_the_idle_timeout(
    edge_factory: EdgeFactory, ws_upstream: WsUpstream
) -> None:
    edge = edge_factory("timeouts: {websocket_idle: 1}\n" + POLICY, upstream_url=ws_upstream.url)
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(_ws_url(edge, "/ws/echo"), headers={"Origin": ORIGIN}) as ws,
    ):
        await ws.send_str("still here")
        assert await ws.receive_str(timeout=10) == "echo:still here"
        message = await ws.receive(timeout=30)  # then nothing, either way
        assert message.type is aiohttp.WSMsgType.CLOSE, message
        assert message.data == 1001
    await _until(lambda: ws_upstream.close_codes)
    assert ws_upstream.close_codes == [1001]


# --- siblings: a vanished client, a client that stops reading --------------------------


async def test_a_vanished_client_is_going_away_for_the_upstream(
    edge_factory: EdgeFactory, ws_upstream: WsUpstream
) -> None:
    """A client whose TCP connection just ends (no close frame: 1006 locally) is passed
    on as 1001; 1006 may never be sent in a close frame (RFC 6455 §7.4.1)."""
    edge = edge_factory(POLICY, upstream_url=ws_upstream.url)
    _, writer, head = await raw_ws_connect(edge.port, "/ws/echo", ORIGIN)
    assert head.startswith("HTTP/1.1 101"), head
    await _until(lambda: ws_upstream.opened == 1)
    writer.transport.abort()
    await _until(lambda: ws_upstream.close_codes)
    assert ws_upstream.close_codes == [1001]
    assert_no_tracebacks(edge)


async def test_a_client_that_stops_reading_is_cut_off(
    edge_factory: EdgeFactory, ws_upstream: WsUpstream
) -> None:
    """The upstream floods, the client reads nothing: after timeouts.client_send the
    relay gives up on it (long before websocket_idle, 300 s by default)."""
    edge = edge_factory("timeouts: {client_send: 1}\n" + POLICY, upstream_url=ws_upstream.url)
    _, writer, head = await raw_ws_connect(edge.port, "/ws/flood", ORIGIN)
    try:
        assert head.startswith("HTTP/1.1 101"), head
        await _until(lambda: ws_upstream.close_codes, timeout=30)
        # The relay closes it with 1001; aiohttp's server, busy flooding, may record its
        # own reply (1000) instead. What matters: a close frame, within the bound.
        assert ws_upstream.close_codes in ([1001], [1000])
    finally:
        writer.transport.abort()
    assert_no_tracebacks(edge)
