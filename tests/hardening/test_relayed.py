"""No invented headers (issue 10, defect 14): no aiohttp ``Server`` banner anywhere, and
no ``Content-Type: application/octet-stream`` where the upstream sent none.

Relayed answers carry the upstream's ``Server`` (or none); answers cors-edge makes
itself, the admin port included, say ``Server: cors-edge``.
"""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest

from tests.support import Edge, Upstream

from .conftest import raw_exchange, request_bytes, traceback_free_edges
from .faultserver import FaultServer

POLICY = """
timeouts: {connect: 1, read: 1, client_header: 1}
limits: {max_header_bytes: 2048}
routes:
  - path: /**
    origins: [https://app.example.com]
"""
ALLOWED = ("Origin", "https://app.example.com")


@pytest.fixture(scope="module")
def edges(
    tmp_path_factory: pytest.TempPathFactory, upstream: Upstream, fault: FaultServer
) -> Iterator[dict[str, Edge]]:
    with traceback_free_edges(tmp_path_factory.mktemp("relayed-edge"), upstream) as factory:
        yield {"fault": factory(POLICY, upstream_url=fault.url), "flask": factory(POLICY)}


def _answer(
    edge: Edge, request: bytes, expect: int = 0
) -> tuple[int | None, list[tuple[str, str]]]:
    responses, _, raw = raw_exchange(edge.port, request, expect=expect, timeout=10)
    assert responses, raw[:200]
    assert b"aiohttp" not in raw.split(b"\r\n\r\n", 1)[0], raw[:400]
    return responses[0].status, responses[0].headers


def _values(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name.lower()]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("path", ["/bare?n=500", "/bare?n=200000", "/bare-stream?n=500"])
def test_no_content_type_is_invented(edges: dict[str, Edge], path: str, method: str) -> None:
    request = request_bytes(method, path, [ALLOWED, ("Connection", "close")])
    status, headers = _answer(edges["fault"], request)
    assert status == 200
    assert _values(headers, "Content-Type") == [], headers
    assert _values(headers, "Server") == [], headers  # the upstream sent none


def test_the_upstreams_own_headers_are_kept(edges: dict[str, Edge]) -> None:
    request = request_bytes("GET", "/public/status", [("Connection", "close")])
    status, headers = _answer(edges["flask"], request)
    assert status == 200
    assert _values(headers, "Server") == ["gunicorn"]
    assert _values(headers, "Content-Type") == ["application/json"]
    request = request_bytes("GET", "/stream?n=100", [ALLOWED, ("Connection", "close")])
    status, headers = _answer(edges["fault"], request)
    assert _values(headers, "Content-Type") == ["application/x-stream"]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("size", [10, 200000], ids=["small", "streamed"])
def test_header_bytes_are_relayed_byte_for_byte(
    edges: dict[str, Edge], size: int, method: str
) -> None:
    """A Latin-1 filename (legal obs-text, what Werkzeug sends) and UTF-8 both pass as sent."""
    request = request_bytes(method, f"/latin1-header?n={size}", [ALLOWED, ("Connection", "close")])
    responses, _, raw = raw_exchange(edges["fault"].port, request, expect=0, timeout=10)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b'\r\nContent-Disposition: attachment; filename="caf\xe9.txt"\r\n' in head, head
    assert "\r\nX-Utf8: café ☕\r\n".encode() in head, head
    assert responses[0].status == 200 and b"aiohttp" not in head
    if method == "GET":
        assert len(responses[0].body) == size


# A small answer to a plain HTTP/1.1 keep-alive request is assembled by relayed.py itself
# (small_answer); to any other request (Connection: close above) by aiohttp.
KEEP_ALIVE = [ALLOWED]


def test_a_small_keep_alive_answer_invents_nothing(edges: dict[str, Edge]) -> None:
    status, headers = _answer(edges["fault"], request_bytes("GET", "/bare?n=500", KEEP_ALIVE), 1)
    assert status == 200
    assert _values(headers, "Content-Type") == [] and _values(headers, "Server") == [], headers
    assert _values(headers, "Content-Length") == ["500"]
    assert len(_values(headers, "Date")) == 1  # a proxy adds the Date an upstream left out


def test_a_small_keep_alive_answer_has_the_headers_aiohttps_would(edges: dict[str, Edge]) -> None:
    def names_and_values(connection: list[tuple[str, str]], expect: int) -> list[tuple[str, str]]:
        request = request_bytes("GET", "/api/items", [ALLOWED, *connection])
        status, headers = _answer(edges["flask"], request, expect)
        assert status == 200
        return sorted(h for h in headers if h[0].lower() not in ("date", "connection"))

    assert names_and_values([], 1) == names_and_values([("Connection", "close")], 0)


def test_a_small_keep_alive_answer_relays_header_bytes_as_sent(edges: dict[str, Edge]) -> None:
    request = request_bytes("GET", "/latin1-header?n=10", KEEP_ALIVE)
    responses, _, raw = raw_exchange(edges["fault"].port, request, expect=1, timeout=10)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b'\r\nContent-Disposition: attachment; filename="caf\xe9.txt"\r\n' in head, head
    assert "\r\nX-Utf8: café ☕\r\n".encode() in head, head
    assert responses[0].status == 200 and len(responses[0].body) == 10


EDGE_MADE = {
    "preflight 204": request_bytes(
        "OPTIONS", "/x", [ALLOWED, ("Access-Control-Request-Method", "GET")]
    ),
    "blocked 403": request_bytes("GET", "/x", [("Origin", "https://evil.test")]),
    "bad path 400": request_bytes("GET", "/a/%2e%2e/x"),
    "upstream gone 502": request_bytes("GET", "/close", [ALLOWED]),
    "upstream silent 504": request_bytes("GET", "/hang", [ALLOWED]),
    "malformed 400": b"GET /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
    b"Content-Length: 2\r\n\r\n",
    "too large 431": request_bytes("GET", "/x", [("X-Big", "b" * 3000)]),
    "bad host 400": request_bytes("GET", "/x", host="user@h"),
    "head timeout 408": b"GET /x HTTP/1.1\r\nHost: h\r\n",
    "HTTP/1.0 403": request_bytes(
        "GET", "/x", [("Origin", "https://evil.test")], version="HTTP/1.0"
    ),
}


@pytest.mark.parametrize("name", list(EDGE_MADE))
def test_edge_made_answers_say_cors_edge(edges: dict[str, Edge], name: str) -> None:
    _, headers = _answer(edges["fault"], EDGE_MADE[name])
    assert _values(headers, "Server") == ["cors-edge"], (name, headers)


async def test_the_admin_port_has_no_banner(edges: dict[str, Edge]) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/healthz", "/readyz", "/metrics"):
            async with session.get(edges["fault"].admin_url + path) as response:
                assert response.headers.getall("Server") == ["cors-edge"], path
