"""Upstream response heads through a real cors-edge (issue 10, item 12), beside
test_upstream_header_limits.py (which has the 9 KB pass and the configurable limits):
the 502 for a head past the limit carries the route's CORS headers, so the page can read
it, and the log names the offending header."""

from __future__ import annotations

import aiohttp

from tests.differential.canned import CannedServer, Reply
from tests.support import EdgeFactory

from .conftest import assert_no_tracebacks

POLICY = """
timeouts: {connect: 2, read: 3}
limits: {max_upstream_header_line: LINE}
routes:
  - path: /**
    origins: [https://app.example.com]
    supports_credentials: true
"""
ORIGIN = {"Origin": "https://app.example.com"}


def _reply(name: str, value: str) -> Reply:
    return Reply(
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            + f"{name}: {value}\r\n".encode()
            + b"Content-Length: 2\r\n\r\nok",
        )
    )


async def test_a_header_line_past_the_limit_is_a_readable_502_with_its_reason(
    edge_factory: EdgeFactory,
) -> None:
    server = await CannedServer([_reply("X-Huge", "h" * 20_000)]).start()
    try:
        edge = edge_factory(POLICY.replace("LINE", "16384"), upstream_url=server.url)
        async with (
            aiohttp.ClientSession() as session,
            session.get(edge.url + "/page", headers=ORIGIN) as response,
        ):
            assert response.status == 502
            assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
        edge.stderr.wait_for("limits.max_upstream_header_line\\): 'X-Huge' is 20010 bytes")
    finally:
        await server.stop()
    assert_no_tracebacks(edge)
