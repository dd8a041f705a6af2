"""proxy/early_answers.py (with proxy/protocol.py's and proxy/server.py's parts of it):
edge answers written as their request is parsed, over real sockets, in front of the
real Flask app.

The early way must be invisible from outside: the same bytes as aiohttp's way, the
same records, answers in request order, flow control and keep-alive kept.
"""

from __future__ import annotations

import re

import pytest

from tests.support import Upstream

from .inprocess import exchange_many, running_edge

APP = "http://localhost:3000"
POLICY = """
unmatched: block
routes:
  - path: /api/**
    origins: [http://localhost:3000]
    methods: [GET, POST, PUT]
    supports_credentials: true
"""
PREFLIGHT = (
    b"OPTIONS /api/items HTTP/1.1\r\nHost: edge\r\nOrigin: http://localhost:3000\r\n"
    b"Access-Control-Request-Method: PUT\r\n\r\n"
)
REFUSED_PREFLIGHT = PREFLIGHT.replace(b"PUT", b"PATCH")
BLOCKED_GET = b"GET /api/items HTTP/1.1\r\nHost: edge\r\nOrigin: https://evil.example\r\n\r\n"
BLOCKED_HEAD = BLOCKED_GET.replace(b"GET", b"HEAD", 1)
BAD_PATH = b"GET /api/%2e%2e/admin HTTP/1.1\r\nHost: edge\r\nOrigin: http://localhost:3000\r\n\r\n"
FORWARDED_GET = b"GET /api/items HTTP/1.1\r\nHost: edge\r\nOrigin: http://localhost:3000\r\n\r\n"
_DATE = re.compile(rb"Date: [^\r]*\r\n")


async def test_a_preflight_is_answered_early_and_recorded(
    upstream: Upstream, early_calls: list[bool]
) -> None:
    async with running_edge(POLICY, upstream.url) as edge:
        [answer] = await exchange_many(edge.port, PREFLIGHT, 1)
        record = await edge.record()
    assert early_calls == [True]
    assert answer.startswith(b"HTTP/1.1 204 No Content\r\n")
    assert b"\r\nAccess-Control-Allow-Origin: http://localhost:3000\r\n" in answer
    assert b"\r\nAccess-Control-Allow-Methods: GET, POST, PUT\r\n" in answer
    assert b"\r\nServer: cors-edge\r\n" in answer and _DATE.search(answer)
    assert (record.method, record.path, record.decision, record.status) == (
        "OPTIONS",
        "/api/items",
        "preflight_ok",
        204,
    )
    assert record.route == "routes[0] path /api/**" and record.origin == APP
    assert record.generation == 1 and record.upstream_ms is None


@pytest.mark.parametrize(
    "request_bytes",
    [PREFLIGHT, REFUSED_PREFLIGHT, BLOCKED_GET, BLOCKED_HEAD, BAD_PATH],
    ids=["preflight", "refused-preflight", "blocked", "blocked-head", "bad-path"],
)
async def test_early_answers_are_the_bytes_aiohttps_way_gives(
    upstream: Upstream, early_calls: list[bool], request_bytes: bytes
) -> None:
    """Alone on a connection the request is answered early; pipelined behind a
    forwarded request it goes aiohttp's way. Both answers agree byte for byte."""
    head = request_bytes.startswith(b"HEAD")
    async with running_edge(POLICY, upstream.url) as edge:
        [early] = await exchange_many(edge.port, request_bytes, 1, (0,) if head else ())
        assert early_calls == [True]
        pipelined = FORWARDED_GET + request_bytes
        forwarded, late = await exchange_many(edge.port, pipelined, 2, (1,) if head else ())
    # The forwarded GET was offered (and declined); what follows it is not offered.
    assert early_calls == [True, False], "the pipelined one must not be answered early"
    assert forwarded.startswith(b"HTTP/1.1 200 ")
    assert _DATE.sub(b"", early) == _DATE.sub(b"", late)
    if head:
        assert early.endswith(b"\r\n\r\n")  # no body on an answer to HEAD


async def test_answers_keep_request_order(upstream: Upstream, early_calls: list[bool]) -> None:
    async with running_edge(POLICY, upstream.url) as edge:
        answers = await exchange_many(
            edge.port, PREFLIGHT + FORWARDED_GET + PREFLIGHT + BLOCKED_GET, 4
        )
    assert [answer.split(b" ", 2)[1] for answer in answers] == [b"204", b"200", b"204", b"403"]
    # The forwarded GET was offered (and declined); nothing after it is offered.
    assert early_calls == [True, False]


async def test_more_pipelined_preflights_than_the_parsers_queue_are_all_answered(
    upstream: Upstream, early_calls: list[bool]
) -> None:
    """aiohttp's parser pauses after 32 messages in flight; answered early, they free
    its queue, and the rest of the read must still be parsed although no read follows."""
    async with running_edge(POLICY, upstream.url) as edge:
        answers = await exchange_many(edge.port, PREFLIGHT * 100, 100)
    assert all(answer.startswith(b"HTTP/1.1 204 ") for answer in answers)
    assert len(early_calls) == 100 and all(early_calls)
