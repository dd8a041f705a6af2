"""Streamed responses reach HTTP/1.0 clients (issue 10, defect 7).

HTTP/1.0 has no chunked coding, so a response of unknown length goes to an HTTP/1.0
client close-delimited: no ``Transfer-Encoding``, the whole body, then the close
(RFC 9112 §6.3, rule 8). Stock nginx ``proxy_pass`` speaks HTTP/1.0 upstream, so
this is every streamed Flask response behind it. Sized responses keep keep-alive.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.support import Edge, Upstream

from .conftest import request_bytes, traceback_free_edges
from .faultserver import PATTERN, FaultServer

POLICY = """
timeouts: {connect: 2, read: 5, client_header: 5, keepalive: 300}
routes:
  - path: /**
    origins: [https://app.example.com]
"""
ORIGIN = ("Origin", "https://app.example.com")


@pytest.fixture(scope="module")
def edges(
    tmp_path_factory: pytest.TempPathFactory, upstream: Upstream, fault: FaultServer
) -> Iterator[dict[str, Edge]]:
    with traceback_free_edges(tmp_path_factory.mktemp("http10-edge"), upstream) as factory:
        yield {"flask": factory(POLICY), "fault": factory(POLICY, upstream_url=fault.url)}


def _pattern(size: int) -> bytes:
    return (PATTERN * (size // len(PATTERN) + 1))[:size]


def _read_until_close(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(1 << 16):
        data += chunk
    return data


def _head(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    end = raw.index(b"\r\n\r\n")
    lines = raw[:end].decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, raw[end + 4 :]


def _exchange_10(port: int, path: str, extra: list[tuple[str, str]]) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request_bytes("GET", path, [ORIGIN, *extra], version="HTTP/1.0"))
        return _read_until_close(sock)


STREAMED = [
    ("flask", "/api/download?mb=1", 1024 * 1024),  # gunicorn streams it chunked
    ("fault", "/stream?n=300000", 300000),  # chunked from the upstream
    ("fault", "/until-close?n=300000", 300000),  # close-delimited from the upstream
    ("fault", "/stream?n=100", 100),  # small, still of unknown length
]


@pytest.mark.parametrize("keep_alive", [False, True], ids=["plain", "keep-alive asked"])
@pytest.mark.parametrize(("which", "path", "size"), STREAMED)
def test_streamed_response_is_close_delimited_for_http10(
    edges: dict[str, Edge], which: str, path: str, size: int, keep_alive: bool
) -> None:
    extra = [("Connection", "keep-alive")] if keep_alive else []
    # Returns only once the edge closed: the close is the end of the body, so a
    # connection held open for keep-alive (300 s here) times the read out.
    raw = _exchange_10(edges[which].port, path, extra)
    status, headers, body = _head(raw)
    assert status.split(" ")[1] == "200", raw[:300]
    assert "transfer-encoding" not in headers, headers
    assert "content-length" not in headers, headers
    assert headers.get("connection", "close").lower() == "close", headers
    assert headers.get("access-control-allow-origin") == "https://app.example.com"
    assert len(body) == size and body == _pattern(size)


def test_sized_response_keeps_http10_keep_alive(edges: dict[str, Edge]) -> None:
    """A response of known length (streamed through, > the small-body size) keeps alive."""
    size = 300000
    with socket.create_connection(("127.0.0.1", edges["fault"].port), timeout=20) as sock:
        for _ in range(2):
            request = request_bytes(
                "GET", f"/big?n={size}", [ORIGIN, ("Connection", "keep-alive")], version="HTTP/1.0"
            )
            sock.sendall(request)
            raw = b""
            while b"\r\n\r\n" not in raw:
                raw += sock.recv(1 << 16)
            status, headers, body = _head(raw)
            assert status.split(" ")[1] == "200" and headers["content-length"] == str(size)
            assert headers.get("connection", "").lower() == "keep-alive", headers
            while len(body) < size:
                chunk = sock.recv(1 << 16)
                assert chunk, "closed mid-body"
                body += chunk
            assert body == _pattern(size)


def test_http11_clients_still_get_chunked(edges: dict[str, Edge]) -> None:
    with socket.create_connection(("127.0.0.1", edges["fault"].port), timeout=20) as sock:
        sock.sendall(request_bytes("GET", "/until-close?n=5000", [ORIGIN, ("Connection", "close")]))
        _, headers, _ = _head(_read_until_close(sock))
    assert headers.get("transfer-encoding") == "chunked", headers
