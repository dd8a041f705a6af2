"""WebSocket relaying under attack and failure (issue 10: defects 3, 4, 5 and 14).

Real cors-edge processes, a real aiohttp WebSocket upstream (or a raw-socket one for
frames no library would send) on loopback, real sockets; RSS is read with psutil.
"""

from __future__ import annotations

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
