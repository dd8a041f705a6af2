"""proxy/websocket.py: upgrades relayed in-process to a real WebSocket upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from proxy.cors import Decision, Verdict
from proxy.forward import Upstream
from proxy.policy import Limits, Timeouts
from proxy.records import RequestRecord
from proxy.websocket import Relays, is_websocket_upgrade, relay_websocket
from tests.e2e.http import fetch

from .inprocess import closed_port, running_edge

APP = "http://localhost:3000"
POLICY = """
routes:
  - path: /ws/**
    origins: [http://localhost:3000]
"""
UPGRADE = {
    "Origin": APP,
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


@pytest.fixture
async def ws_upstream() -> AsyncIterator[str]:
    async def echo(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            await ws.send_str("echo:" + message.data)
        return ws

    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=403, text="no")

    app = web.Application()
    app.router.add_get("/ws/echo", echo)
    app.router.add_get("/ws/refused", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


def test_what_counts_as_an_upgrade() -> None:
    def request(method: str, **headers: str) -> web.Request:
        return make_mocked_request(method, "/ws/x", headers=headers)

    assert is_websocket_upgrade(
        request("GET", Upgrade="WebSocket", Connection="keep-alive, Upgrade")
    )
    assert not is_websocket_upgrade(request("POST", Upgrade="websocket", Connection="upgrade"))
    assert not is_websocket_upgrade(request("GET", Upgrade="h2c", Connection="upgrade"))
    assert not is_websocket_upgrade(request("GET", Upgrade="websocket"))


async def test_messages_pass_both_ways(ws_upstream: str) -> None:
    async with (
        running_edge(POLICY, ws_upstream) as edge,
        aiohttp.ClientSession() as session,
        session.ws_connect(edge.url.replace("http", "ws") + "/ws/echo", origin=APP) as ws,
    ):
        assert ws._response.headers["Vary"] == "Origin"
        await ws.send_str("hi")
        assert await ws.receive_str(timeout=5) == "echo:hi"


async def test_a_refused_handshake_is_a_json_answer_the_page_can_read(ws_upstream: str) -> None:
    """WebSocket refusals were once plain text without Vary or CORS headers."""
    async with running_edge(POLICY, ws_upstream) as edge:
        answer = await fetch("GET", edge.url + "/ws/refused", UPGRADE)
    assert answer.status == 403
    assert answer.json() == {"error": "upstream refused the WebSocket", "status": 403}
    assert answer.headers["Vary"] == "Origin" and answer.headers["Server"] == "cors-edge"
    assert answer.headers["Access-Control-Allow-Origin"] == APP


async def test_an_unreachable_upstream_is_a_json_502() -> None:
    async with running_edge(POLICY, f"http://127.0.0.1:{closed_port()}") as edge:
        answer = await fetch("GET", edge.url + "/ws/echo", UPGRADE)
    assert answer.status == 502
    assert answer.json() == {"error": "upstream unavailable", "status": 502}
    assert answer.headers["Vary"] == "Origin"


async def test_the_callers_headers_are_left_as_they_were(ws_upstream: str) -> None:
    upstream = Upstream(ws_upstream, Timeouts(), Limits())
    await upstream.start()
    seen: list[CIMultiDict[str]] = []

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        headers = CIMultiDict(request.headers)
        before = CIMultiDict(headers)
        verdict = Verdict(Decision.NO_ROUTE, None, (), None, "no route matches")
        record = RequestRecord("GET", "/ws/echo", None, None, "no_route", 0, 0, None, 0.0)
        response = await relay_websocket(
            request, upstream, "/ws/echo", headers, verdict, record, Relays(Limits().max_websockets)
        )
        seen.extend((before, headers))
        return response

    runner = web.ServerRunner(web.Server(handler))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"ws://127.0.0.1:{runner.addresses[0][1]}/ws/echo") as ws,
        ):
            await ws.send_str("x")
            assert await ws.receive_str(timeout=5) == "echo:x"
    finally:
        await runner.cleanup()
        await upstream.close()
    before, after = seen
    assert "Sec-WebSocket-Key" in after and list(after.items()) == list(before.items())


def test_close_codes_passed_on_are_ones_a_close_frame_may_carry() -> None:
    from proxy.websocket import sendable

    assert [sendable(code) for code in (1000, 1001, 1008, 1009, 1011, 3000, 4999)] == [
        1000,
        1001,
        1008,
        1009,
        1011,
        3000,
        4999,
    ]
    # Local-only codes (no code, no close frame, TLS) and reserved ones: the peer went away.
    assert [sendable(code) for code in (1004, 1005, 1006, 1015, 2000, 5000)] == [1001] * 6
    assert sendable(None) == 1000
