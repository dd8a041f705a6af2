"""DESIGN.md's "Proxying" rules end to end, and the errors cors-edge makes itself."""

from __future__ import annotations

import asyncio
import socket
import uuid

from tests.e2e.http import fetch
from tests.support import Edge, EdgeFactory, Upstream

APP = "http://localhost:3000"

POLICY = """
timeouts: {connect: 1, read: 1.5}
limits: {max_body_bytes: 1000}
routes:
  - path: /api/**
    origins: [http://localhost:3000]
    supports_credentials: true
"""


def echo(answer_json: object) -> dict[str, object]:
    assert isinstance(answer_json, dict)
    return answer_json


async def test_hop_by_hop_dropped_host_kept_forwarded_headers_replaced(
    standard_edge: Edge,
) -> None:
    answer = await fetch(
        "GET",
        standard_edge.url + "/api/echo",
        {
            "Host": "public.example.net",
            "Origin": APP,
            "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "drop me",
            "Keep-Alive": "timeout=5",
            "Proxy-Authorization": "Basic c2VjcmV0",
            "Upgrade": "h2c",
            "X-Forwarded-For": "6.6.6.6",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "spoofed.example",
            "X-Custom": "kept",
        },
    )
    seen = {k.lower(): v for k, v in dict(echo(answer.json())["headers"]).items()}  # type: ignore[call-overload]
    assert seen["host"] == "public.example.net"
    assert seen["x-custom"] == "kept"
    for hop in ("x-secret-hop", "keep-alive", "proxy-authorization", "upgrade"):
        assert hop not in seen, hop
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == "public.example.net"


async def test_trusted_peers_forwarded_headers_are_appended(edge_factory: EdgeFactory) -> None:
    edge = edge_factory(
        "trust_forwarded_from: [127.0.0.0/8]\nroutes: [{path: /api/**, origins: '*'}]\n"
    )
    answer = await fetch(
        "GET",
        edge.url + "/api/echo",
        {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "Host": "a.test"},
    )
    seen = {k.lower(): v for k, v in dict(echo(answer.json())["headers"]).items()}  # type: ignore[call-overload]
    assert seen["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "https, http"
    assert seen["x-forwarded-host"] == "a.test"


def _raw_exchange(
    port: int, request: bytes, *, read_until: bytes = b"", timeout: float = 10
) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while read_until not in data or not read_until:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if read_until and read_until in data:
                break
        return data


async def test_chunked_upload_and_keep_alive(standard_edge: Edge) -> None:
    body = b"".join(
        f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (b"hello ", b"world")
    )
    one = (
        b"POST /api/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + body
        + b"0\r\n\r\n"
    )
    two = b"GET /api/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    data = await asyncio.to_thread(_raw_exchange, standard_edge.port, one + two)
    assert data.count(b"HTTP/1.1 200 OK") == 2, data  # both answered on one connection
    assert b'"received":11' in data
    assert data.endswith(b"pong")


async def test_expect_100_continue(standard_edge: Edge) -> None:
    def exchange() -> tuple[bytes, bytes]:
        with socket.create_connection(("127.0.0.1", standard_edge.port), timeout=10) as sock:
            sock.sendall(
                b"POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
            )
            interim = sock.recv(65536)
            sock.sendall(b"abcde")
            rest = b""
            while chunk := sock.recv(65536):
                rest += chunk
            return interim, rest

    interim, rest = await asyncio.to_thread(exchange)
    assert interim.startswith(b"HTTP/1.1 100 Continue")
    assert rest.startswith(b"HTTP/1.1 200") or b"HTTP/1.1 200" in interim + rest
    assert b'"received":5' in interim + rest


async def test_refused_expect_100_gets_403_without_reading_the_body(standard_edge: Edge) -> None:
    request = (
        b"POST /api/upload HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.test\r\n"
        b"Content-Length: 100000000\r\nExpect: 100-continue\r\n\r\n"
    )
    data = await asyncio.to_thread(_raw_exchange, standard_edge.port, request, read_until=b"}")
    assert data.startswith(b"HTTP/1.1 403")
    assert b"100 Continue" not in data


async def test_upstream_down_is_502_readable_by_allowed_page(edge_factory: EdgeFactory) -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        closed_port = placeholder.getsockname()[1]
    edge = edge_factory(POLICY, upstream_url=f"http://127.0.0.1:{closed_port}")
    answer = await fetch("GET", edge.url + "/api/items", {"Origin": APP})
    assert answer.status == 502
    assert answer.headers["Access-Control-Allow-Origin"] == APP
    assert answer.headers["Access-Control-Allow-Credentials"] == "true"
    assert answer.headers["Vary"] == "Origin"
    assert echo(answer.json())["status"] == 502
    assert answer.headers["Server"] == "cors-edge"  # who answered is never in doubt
    refused = await fetch("GET", edge.url + "/api/items", {"Origin": "https://evil.test"})
    assert refused.status == 403  # the refused origin learns nothing about the upstream


async def test_upstream_too_slow_is_504_readable_by_allowed_page(edge_factory: EdgeFactory) -> None:
    edge = edge_factory(POLICY)
    answer = await fetch("GET", edge.url + "/api/slow?seconds=4", {"Origin": APP})
    assert answer.status == 504
    assert answer.headers["Access-Control-Allow-Origin"] == APP


async def test_body_over_the_limit_is_413_with_cors_headers(
    edge_factory: EdgeFactory, upstream: Upstream
) -> None:
    edge = edge_factory(POLICY)
    marker = uuid.uuid4().hex
    answer = await fetch("POST", f"{edge.url}/api/upload?m={marker}", {"Origin": APP}, b"x" * 5000)
    assert answer.status == 413
    assert answer.headers["Access-Control-Allow-Origin"] == APP
    assert not any(marker in str(e["raw_uri"]) for e in upstream.requests())


async def test_unix_socket_upstream(tmp_path: object, edge_factory: EdgeFactory) -> None:
    from pathlib import Path

    from tests.support import start_upstream

    assert isinstance(tmp_path, Path)
    unix_upstream = start_upstream(tmp_path, workers=1, unix_socket=tmp_path / "gunicorn.sock")
    try:
        edge = edge_factory(POLICY, upstream_url=unix_upstream.url)
        answer = await fetch("GET", edge.url + "/api/items", {"Origin": APP, "Host": "h.test"})
        assert answer.status == 200
        assert answer.headers["Access-Control-Allow-Origin"] == APP
    finally:
        unix_upstream.stop()


SLOW_BODY_POLICY = """
timeouts: {client_body: 0.5}
routes: [{path: /api/**, origins: [http://localhost:3000]}]
"""


async def test_small_body_read_whole_times_out_with_408(
    edge_factory: EdgeFactory, upstream: Upstream
) -> None:
    edge = edge_factory(SLOW_BODY_POLICY)
    marker = uuid.uuid4().hex
    request = (
        f"POST /api/upload?m={marker} HTTP/1.1\r\nHost: x\r\nOrigin: {APP}\r\n"
        "Content-Length: 100\r\n\r\n0123456789"
    ).encode()
    data = await asyncio.to_thread(_raw_exchange, edge.port, request, read_until=b"}")
    assert data.startswith(b"HTTP/1.1 408")
    assert b"Access-Control-Allow-Origin: http://localhost:3000" in data
    assert not any(marker in str(e["raw_uri"]) for e in upstream.requests())


async def test_small_body_cut_short_never_reaches_flask(
    edge_factory: EdgeFactory, upstream: Upstream
) -> None:
    edge = edge_factory(SLOW_BODY_POLICY)
    marker = uuid.uuid4().hex

    def cut_short() -> bytes:
        with socket.create_connection(("127.0.0.1", edge.port), timeout=10) as sock:
            sock.sendall(
                f"POST /api/upload?m={marker} HTTP/1.1\r\nHost: x\r\n"
                "Content-Length: 100\r\n\r\n0123456789".encode()
            )
            sock.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            return data

    data = await asyncio.to_thread(cut_short)
    assert not data.startswith(b"HTTP/1.1 2")
    assert not any(marker in str(e["raw_uri"]) for e in upstream.requests())
    assert "Traceback" not in edge.stderr.text()


async def test_repeated_head_requests_through_the_streaming_path(standard_edge: Edge) -> None:
    """aiohttp's shared empty payload once made the relay loop spin for ever on the
    second HEAD of a streamed (unsized) response."""
    for _ in range(3):
        answer = await fetch(
            "HEAD", standard_edge.url + "/api/download?mb=1", {"Origin": APP}, timeout=5
        )
        assert answer.status == 200 and answer.body == b""
    # and the edge is still responsive, not spinning
    answer = await fetch("GET", standard_edge.url + "/api/ping", {"Origin": APP}, timeout=5)
    assert answer.body == b"pong"
