"""DESIGN.md "Least privilege", end to end: `origins: []`, `unmatched: block`, and the
shipped policy being deny-by-default, against real cors-edge and Flask processes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from proxy.policy import PREFLIGHT_VARY
from tests.e2e.http import fetch
from tests.support import REPO, Edge, EdgeFactory, Upstream

POLICY = """
unmatched: block
routes:
  - path: /api/**
    origins: [http://localhost:3000]
    methods: [GET, POST, PUT, DELETE]
  - path: /public/**
    origins: []
"""


def flask_saw(upstream: Upstream, marker: str) -> bool:
    return any(marker in str(entry.get("raw_uri")) for entry in upstream.requests())


async def post(edge: Edge, path: str, headers: dict[str, str]) -> tuple[int, str, str]:
    marker = uuid.uuid4().hex
    answer = await fetch(
        "POST", f"{edge.url}{path}?m={marker}", {"Content-Type": "text/plain", **headers}, b"x"
    )
    return answer.status, answer.headers.get("Vary", ""), marker


async def test_unmatched_block_refuses_cross_origin_before_flask(
    edge_factory: EdgeFactory, upstream: Upstream
) -> None:
    edge = edge_factory(POLICY)
    preflight = await fetch(
        "OPTIONS",
        edge.url + "/admin/users",
        {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "DELETE"},
    )
    assert preflight.status == 403 and preflight.cors() == {}
    assert preflight.headers["Vary"] == PREFLIGHT_VARY
    status, vary, marker = await post(edge, "/admin/users", {"Origin": "https://evil.test"})
    assert (status, vary) == (403, "Origin")
    assert not flask_saw(upstream, marker), "a cross-site POST must not run legacy code"


async def test_unmatched_block_forwards_same_origin_and_no_origin(
    edge_factory: EdgeFactory, upstream: Upstream
) -> None:
    edge = edge_factory(POLICY)
    for headers in ({}, {"Origin": edge.url}):
        status, vary, marker = await post(edge, "/admin/users", headers)
        assert status == 200 and "Origin" in vary, headers
        assert flask_saw(upstream, marker)


async def test_an_empty_origin_list_allows_no_cross_origin_reader(
    edge_factory: EdgeFactory, upstream: Upstream
) -> None:
    edge = edge_factory(POLICY)
    preflight = await fetch(
        "OPTIONS",
        edge.url + "/public/echo",
        {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "PUT"},
    )
    assert preflight.status == 403 and preflight.cors() == {}
    status, _, marker = await post(edge, "/public/echo", {"Origin": "http://localhost:3000"})
    assert status == 403 and not flask_saw(upstream, marker)
    status, _, marker = await post(edge, "/public/echo", {})
    assert status == 200 and flask_saw(upstream, marker)


async def test_the_shipped_policy_is_deny_by_default(
    edge_factory: EdgeFactory, upstream: Upstream
) -> None:
    edge = edge_factory((REPO / "config" / "policies.yaml").read_text())
    status, _, marker = await post(edge, "/admin/users", {"Origin": "http://localhost:3000"})
    assert status == 403 and not flask_saw(upstream, marker)
    # The README's quick start still holds.
    preflight = await fetch(
        "OPTIONS",
        edge.url + "/api/items/1",
        {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "PUT"},
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    status, _, _ = await post(edge, "/api/items", {"Origin": "https://evil.test"})
    assert status == 403
    allowed = await fetch("GET", edge.url + "/api/items", {"Origin": "http://localhost:3000"})
    assert allowed.status == 200
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    public = await fetch("GET", edge.url + "/public/status", {"Origin": "https://evil.test"})
    assert public.status == 200 and public.headers["Access-Control-Allow-Origin"] == "*"


@pytest.fixture
async def ws_upstream() -> AsyncIterator[str]:
    async def hello(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("hello")
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/live/feed", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_unmatched_block_refuses_a_cross_origin_websocket(
    edge_factory: EdgeFactory, ws_upstream: str
) -> None:
    edge = edge_factory(POLICY, upstream_url=ws_upstream)
    url = f"ws://127.0.0.1:{edge.port}/live/feed"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(url, headers={"Origin": "https://evil.test"})
        assert refused.value.status == 403
        async with session.ws_connect(url, headers={"Origin": edge.url}) as ws:
            assert await ws.receive_str(timeout=5) == "hello"
