"""Upstream response heads through a real cors-edge (issue 10, item 12): a legal 9 KB
header line passes, one past ``limits.max_upstream_header_line`` is a 502 that the page
can read and whose reason the log names, and the limit is configurable."""

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
CSP = ("default-src 'self'; " + "img-src https://cdn.example.com; " * 270).strip()  # 9 KB


def _reply(name: str, value: str) -> Reply:
    return Reply(
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            + f"{name}: {value}\r\n".encode()
            + b"Content-Length: 2\r\n\r\nok",
        )
    )


async def test_a_9_kb_header_line_passes(edge_factory: EdgeFactory) -> None:
    server = await CannedServer([_reply("Content-Security-Policy", CSP)]).start()
    try:
        edge = edge_factory(POLICY.replace("LINE", "16384"), upstream_url=server.url)
        async with (
            aiohttp.ClientSession(max_field_size=32768) as session,
            session.get(edge.url + "/page", headers=ORIGIN) as response,
        ):
            assert response.status == 200
            assert response.headers["Content-Security-Policy"] == CSP
            assert await response.read() == b"ok"
    finally:
        await server.stop()
    assert_no_tracebacks(edge)


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
        edge.stderr.wait_for("response header 'X-Huge' is 20010 bytes long")
        edge.stderr.wait_for("limits.max_upstream_header_line")
    finally:
        await server.stop()
    assert_no_tracebacks(edge)


async def test_the_header_line_limit_is_configurable(edge_factory: EdgeFactory) -> None:
    server = await CannedServer([_reply("X-Huge", "h" * 20_000)]).start()
    try:
        edge = edge_factory(POLICY.replace("LINE", "32768"), upstream_url=server.url)
        async with (
            aiohttp.ClientSession(max_field_size=32768) as session,
            session.get(edge.url + "/page", headers=ORIGIN) as response,
        ):
            assert response.status == 200
            assert response.headers["X-Huge"] == "h" * 20_000
    finally:
        await server.stop()
    assert_no_tracebacks(edge)
