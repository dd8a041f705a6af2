"""proxy/upstream_request.py: request heads as aiohttp's client wrote them, and targets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from proxy.upstream_request import UpstreamTarget, request_head


def test_request_heads() -> None:
    headers = [("Host", "h"), ("X-A", "1")]
    head, chunked = request_head("GET", "/a?b=%20", headers, None, expect=False)
    assert head == b"GET /a?b=%20 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n" and not chunked
    head, _ = request_head("POST", "/", [("Host", "h")], None, expect=False)
    assert head.endswith(b"Content-Length: 0\r\n\r\n")
    head, _ = request_head("POST", "/", [("Host", "h")], b"abc", expect=False)
    assert head.endswith(b"Content-Length: 3\r\n\r\n")

    async def stream() -> AsyncIterator[bytes]:
        yield b""

    head, chunked = request_head("PUT", "/", [("Content-Length", "9")], stream(), expect=True)
    assert chunked is False and head.count(b"Content-Length") == 1
    assert head.endswith(b"Expect: 100-continue\r\n\r\n")
    head, chunked = request_head("PUT", "/", [], stream(), expect=False)
    assert chunked is True and head.endswith(b"Transfer-Encoding: chunked\r\n\r\n")
    assert "Ü".encode() in request_head("GET", "/", [("X-N", "Ü")], None, expect=False)[0]


@pytest.mark.parametrize("bad", [("X-A", "1\r\nX-Injected: 1"), ("X-A", "1\n"), ("X\r\nY", "1")])
def test_request_heads_refuse_line_breaks(bad: tuple[str, str]) -> None:
    with pytest.raises(ValueError):
        request_head("GET", "/", [bad], None, expect=False)


def test_a_request_without_host_gets_the_upstreams_authority() -> None:
    head, _ = request_head("GET", "/", [("X-A", "1")], None, expect=False, authority="a:81")
    assert head == b"GET / HTTP/1.1\r\nHost: a:81\r\nX-A: 1\r\n\r\n"
    head, _ = request_head("GET", "/", [("host", "c")], None, expect=False, authority="a:81")
    assert head == b"GET / HTTP/1.1\r\nhost: c\r\n\r\n"
    assert UpstreamTarget.parse("http://127.0.0.1:80").authority == "127.0.0.1"
    assert UpstreamTarget.parse("http://[::1]:8000").authority == "[::1]:8000"
    assert UpstreamTarget.parse("unix:/run/app.sock").authority == "upstream"


def test_targets() -> None:
    assert UpstreamTarget.parse("http://127.0.0.1:8000") == UpstreamTarget("127.0.0.1", 8000)
    assert UpstreamTarget.parse("http://[::1]:81").host == "::1"
    assert UpstreamTarget.parse("http://app").port == 80
    assert UpstreamTarget.parse("unix:/run/app.sock").unix_path == "/run/app.sock"
    assert UpstreamTarget("127.0.0.1", 1).literal and not UpstreamTarget("app", 1).literal
