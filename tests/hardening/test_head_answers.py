"""No body on any answer to HEAD (RFC 9112 §6.3; issue 10, defect 9).

A keep-alive client reads the bytes after a HEAD answer's head as the next
response, so a body there desynchronises the connection. Every answer the edge
makes itself (blocked 403, bad path 400, 408, 413, 414, 431, 502, 504) and every
relayed one (sized, chunked, close-delimited, no Content-Type) is checked on the
raw bytes, with a request pipelined behind it that must come back intact.
"""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest
from yarl import URL

from tests.support import Edge, EdgeFactory

from .conftest import assert_no_tracebacks, raw_exchange, request_bytes
from .faultserver import FaultServer

POLICY = """
timeouts: {connect: 1, read: 1, client_header: 5, client_body: 1, keepalive: 10}
limits: {max_body_bytes: 1000, max_header_bytes: 2048}
defaults:
  methods: [GET, HEAD, POST]
routes:
  - path: /**
    origins: [https://app.example.com]
"""
ALLOWED = ("Origin", "https://app.example.com")
REFUSED = ("Origin", "https://evil.test")
FOLLOW = request_bytes("GET", "/ok", [("X-Test-Marker", "follow"), ("Connection", "close")])


@pytest.fixture(scope="module")
def head_edge(
    tmp_path_factory: pytest.TempPathFactory, upstream: object, fault: FaultServer
) -> Iterator[Edge]:
    factory = EdgeFactory(tmp_path_factory.mktemp("head-edge"), upstream)  # type: ignore[arg-type]
    edge = factory(POLICY, upstream_url=fault.url)
    yield edge
    try:
        assert_no_tracebacks(edge)
    finally:
        factory.close()


def _split_head(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """The first final response's status and headers, and every byte after its head."""
    while True:
        end = raw.find(b"\r\n\r\n")
        assert end != -1, f"no complete response head in {raw[:300]!r}"
        lines = raw[:end].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        raw = raw[end + 4 :]
        if status >= 200:
            break
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, raw


# (name, HEAD request bytes (and whatever follows it), expected status, keeps the connection)
EDGE_MADE = [
    ("blocked 403", request_bytes("HEAD", "/ok", [REFUSED]), 403, True),
    ("bad path 400", request_bytes("HEAD", "/a/%2e%2e/ok", [ALLOWED]), 400, True),
    ("upstream silent 504", request_bytes("HEAD", "/hang", [ALLOWED]), 504, True),
    ("upstream gone 502", request_bytes("HEAD", "/close", [ALLOWED]), 502, True),
    (
        "body too large 413",
        request_bytes("HEAD", "/ok", [ALLOWED], b"x" * 5000),
        413,
        False,
    ),
    (
        "header too large 431",
        request_bytes("HEAD", "/ok", [ALLOWED, ("X-Big", "y" * 3000)]),
        431,
        False,
    ),
    ("target too long 414", request_bytes("HEAD", "/" + "t" * 3000, [ALLOWED]), 414, False),
    (
        "body timeout 408",
        request_bytes("HEAD", "/ok", [ALLOWED, ("Content-Length", "10")]) + b"ab",
        408,
        False,
    ),
    (
        "HTTP/1.0 keep-alive blocked 403",
        request_bytes("HEAD", "/ok", [REFUSED, ("Connection", "keep-alive")], version="HTTP/1.0"),
        403,
        True,
    ),
]


@pytest.mark.parametrize(
    ("name", "request_", "status", "keeps"), EDGE_MADE, ids=[case[0] for case in EDGE_MADE]
)
def test_edge_made_answers_to_head_have_no_body(
    head_edge: Edge, name: str, request_: bytes, status: int, keeps: bool
) -> None:
    pipelined = request_ if status == 408 else request_ + FOLLOW
    _, _, raw = raw_exchange(head_edge.port, pipelined, expect=0, timeout=10, quiet=2.5)
    got, headers, rest = _split_head(raw)
    assert got == status, (name, raw[:300])
    if keeps:
        # The next bytes are the pipelined request's answer, not a body.
        assert rest.startswith(b"HTTP/1.1 200 "), (name, rest[:200])
        assert b'"marker": "follow"' in rest, (name, rest[:400])
    else:
        assert rest == b"" or rest.startswith(b"HTTP/1.1 200 "), (name, rest[:200])
        if rest == b"":
            assert headers.get("connection") == "close" or status in (431, 414, 408), headers


RELAYED = ["/ok", "/stream?n=50000", "/until-close?n=50000", "/bare?n=500", "/bare-stream?n=500"]


@pytest.mark.parametrize("path", RELAYED)
def test_relayed_answers_to_head_have_no_body(head_edge: Edge, path: str) -> None:
    request = request_bytes("HEAD", path, [ALLOWED])
    _, _, raw = raw_exchange(head_edge.port, request + FOLLOW, expect=0, timeout=10, quiet=2.5)
    status, headers, rest = _split_head(raw)
    assert status == 200, raw[:300]
    assert headers.get("access-control-allow-origin") == "https://app.example.com"
    assert rest.startswith(b"HTTP/1.1 200 "), (path, rest[:200])
    assert b'"marker": "follow"' in rest, (path, rest[:400])


async def test_keep_alive_client_reads_the_answer_after_a_refused_head(head_edge: Edge) -> None:
    """aiohttp (as Node) reuses the connection: a body after the 403 breaks the next request."""
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        for refused in ("/ok", "/a/%2e%2e/ok"):
            origin = dict([REFUSED]) if refused == "/ok" else dict([ALLOWED])
            url = URL(head_edge.url + refused, encoded=True)
            async with session.head(url, headers=origin) as response:
                assert response.status in (400, 403)
            async with session.get(head_edge.url + "/ok", headers=dict([ALLOWED])) as response:
                assert response.status == 200
                assert (await response.json())["method"] == "GET"
