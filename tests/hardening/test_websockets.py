"""WebSocket relaying under attack and failure (issue 10: defects 3, 4, 5 and 14).

Real cors-edge processes, a real aiohttp WebSocket upstream (or a raw-socket one for
frames no library would send) on loopback, real sockets; RSS is read with psutil.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support import Edge, EdgeFactory

from .conftest import assert_no_tracebacks
from .wsupstream import WsUpstream

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
