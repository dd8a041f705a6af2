"""proxy/protocol.py: the connection handler's early way, over real sockets in front of
the real Flask app: which requests it offers to the server's early answer, what a
failure there costs (nothing), and the keep-alive timer of connections it answers.

Parser refusals and the head deadline are tested in tests/hardening (test_protocol_abuse,
test_slow_clients); the refused-head parsing in test_refusals.py.
"""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.http_parser import RawRequestMessage

from proxy.server import EdgeServer
from tests.support import Upstream

from .inprocess import exchange_many, read_responses, running_edge

POLICY = """
timeouts: {keepalive: 0.6}
routes:
  - path: /api/**
    origins: [http://localhost:3000]
    methods: [GET, POST, PUT]
"""
PREFLIGHT = (
    b"OPTIONS /api/items HTTP/1.1\r\nHost: edge\r\nOrigin: http://localhost:3000\r\n"
    b"Access-Control-Request-Method: PUT\r\n\r\n"
)
FORWARDED_GET = b"GET /api/items HTTP/1.1\r\nHost: edge\r\nOrigin: http://localhost:3000\r\n\r\n"


@pytest.mark.parametrize(
    "request_bytes",
    [
        PREFLIGHT.replace(b"HTTP/1.1", b"HTTP/1.0"),
        PREFLIGHT.replace(b"Host: edge\r\n", b"Host: edge\r\nConnection: close\r\n"),
        PREFLIGHT.replace(b"Host: edge\r\n", b"Host: edge\r\nContent-Length: 2\r\n") + b"{}",
        PREFLIGHT.replace(b"Host: edge\r\n", b"Host: a@edge\r\n"),
    ],
    ids=["http10", "connection-close", "with-body", "refused-host"],
)
async def test_what_is_not_plain_goes_aiohttps_way(
    upstream: Upstream, early_calls: list[bool], request_bytes: bytes
) -> None:
    async with running_edge(POLICY, upstream.url) as edge:
        reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
        writer.write(request_bytes)
        async with asyncio.timeout(10):
            answer = await reader.readuntil(b"\r\n\r\n")
        writer.close()
    assert early_calls == []  # never offered to the server's early answer
    expected = b"400" if b"a@edge" in request_bytes else b"204"
    assert answer.split(b" ", 2)[1] == expected


async def test_a_failing_early_answer_loses_no_request(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: EdgeServer, message: RawRequestMessage, peer: str | None) -> bytes:
        raise RuntimeError("a bug in the early way")

    monkeypatch.setattr(EdgeServer, "answer_early", broken)
    async with running_edge(POLICY, upstream.url) as edge:
        [answer] = await exchange_many(edge.port, PREFLIGHT, 1)
    assert answer.startswith(b"HTTP/1.1 204 ")
    assert "could not answer a request early" in caplog.text


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            return await reader.read(1) == b""
    except TimeoutError:
        return False


async def test_a_connection_idle_after_early_answers_closes_at_the_keepalive_timeout(
    upstream: Upstream,
) -> None:
    async with running_edge(POLICY, upstream.url) as edge:
        reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
        try:
            for _ in range(3):  # each answer restarts the 0.6 s keep-alive
                writer.write(PREFLIGHT)
                await read_responses(reader, 1)
                assert not await _closed_within(reader, 0.35)
            assert await _closed_within(reader, 2.0)
        finally:
            writer.close()


async def test_a_forwarded_requests_keepalive_timer_does_not_close_a_busy_connection(
    upstream: Upstream,
) -> None:
    """aiohttp's keep-alive timer, started after the forwarded request, would close the
    connection 0.6 s later though early answers kept it busy."""
    async with running_edge(POLICY, upstream.url) as edge:
        reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
        try:
            writer.write(FORWARDED_GET)
            await read_responses(reader, 1)
            for _ in range(5):  # 1 s of early answers, 0.2 s apart
                await asyncio.sleep(0.2)
                writer.write(PREFLIGHT)
                [answer] = await read_responses(reader, 1)
                assert answer.startswith(b"HTTP/1.1 204 ")
        finally:
            writer.close()
