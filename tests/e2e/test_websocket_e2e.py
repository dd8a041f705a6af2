"""WebSocket upgrades pass through cors-edge; refused origins cannot open one.

gunicorn's sync Flask cannot speak WebSocket, so the upstream here is a small real
aiohttp WebSocket server on loopback, the kind of service that sits behind such apps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from tests.support import EdgeFactory

POLICY = """
routes:
  - path: /ws/**
    origins: [http://localhost:3000]
"""


@pytest.fixture
async def ws_upstream() -> AsyncIterator[str]:
    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("chat.v2",))
        await ws.prepare(request)
        await ws.send_str(f"hello {request.headers.get('Origin')} via {request.host}")
        async for message in ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                await ws.send_str("echo:" + message.data)
            elif message.type is aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(message.data[::-1])
        return ws

    app = web.Application()
    app.router.add_get("/ws/echo", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_websocket_passthrough(edge_factory: EdgeFactory, ws_upstream: str) -> None:
    edge = edge_factory(POLICY, upstream_url=ws_upstream)
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            f"ws://127.0.0.1:{edge.port}/ws/echo",
            headers={"Origin": "http://localhost:3000", "Host": "app.test"},
            protocols=("chat.v2",),
        ) as ws,
    ):
        assert ws.protocol == "chat.v2"
        assert await ws.receive_str(timeout=5) == "hello http://localhost:3000 via app.test"
        await ws.send_str("ping")
        assert await ws.receive_str(timeout=5) == "echo:ping"
        await ws.send_bytes(b"\x00\x01\x02")
        assert await ws.receive_bytes(timeout=5) == b"\x02\x01\x00"


async def test_websocket_from_refused_origin_is_403(
    edge_factory: EdgeFactory, ws_upstream: str
) -> None:
    edge = edge_factory(POLICY, upstream_url=ws_upstream)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await session.ws_connect(
                f"ws://127.0.0.1:{edge.port}/ws/echo", headers={"Origin": "https://evil.test"}
            )
    assert caught.value.status == 403


async def test_websocket_upgrade_carries_the_debug_header(
    edge_factory: EdgeFactory, ws_upstream: str
) -> None:
    edge = edge_factory(POLICY, "--debug", upstream_url=ws_upstream)
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    writer.write(
        b"GET /ws/echo HTTP/1.1\r\nHost: app.test\r\nOrigin: http://localhost:3000\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    # A clean goodbye: a masked close frame (1000), then the edge closes after its own.
    writer.write(b"\x88\x82\x00\x00\x00\x00\x03\xe8")
    await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert head.startswith(b"HTTP/1.1 101 ")
    assert (
        b'\r\nCORS-Edge-Decision: allowed; route="routes[0] path /ws/**"; '
        b'reason="origin allowed by routes[0] path /ws/**"\r\n'
    ) in head
