"""proxy/protocol.py: its pure helpers, and the aiohttp internals it relies on.

If an aiohttp upgrade moves one of these private names, these tests say which.
"""

from __future__ import annotations

import inspect

import aiohttp
from aiohttp import web_protocol
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong

from proxy.loader import load_policy_text
from proxy.protocol import EdgeRequestHandler, refusal_cors_headers, refusal_status

from .conftest import HARDENING_POLICY

POLICIES = load_policy_text(HARDENING_POLICY)


def test_aiohttp_internals_protocol_relies_on() -> None:
    assert aiohttp.__version__.startswith("3.14.")
    assert hasattr(web_protocol, "_ErrInfo")
    slots = set(web_protocol.RequestHandler.__slots__) | set(BaseProtocol.__slots__)
    assert {"_request_count", "_waiter", "_force_close", "_upgraded", "_messages"} <= slots
    source = inspect.getsource(web_protocol.RequestHandler.data_received)
    assert "_ErrInfo(status=400" in source  # parser errors become queued _ErrInfo messages
    assert "self._request_count += 1" in source
    handle_error = inspect.signature(web_protocol.RequestHandler.handle_error)
    assert list(handle_error.parameters) == ["self", "request", "status", "exc", "message"]
    assert issubclass(EdgeRequestHandler, web_protocol.RequestHandler)


def test_refusal_status() -> None:
    long_target = b"GET /" + b"a" * 9000
    assert refusal_status(LineTooLong(b"x", 8190), long_target, 8190) == 414
    assert refusal_status(LineTooLong(b"x", 8190), b"GET / HTTP/1.1\r\nX: aaaa", 8190) == 431
    assert refusal_status(BadHttpMessage("Too many headers received"), b"", 8190) == 431
    assert refusal_status(BadHttpMessage("Duplicate 'Host' header found."), b"", 8190) == 400
    assert refusal_status(None, b"", 8190) == 400


def _headers(head: bytes) -> dict[str, str]:
    return dict(refusal_cors_headers(POLICIES, head))


def test_refusal_cors_headers_grant_what_the_route_grants() -> None:
    head = b"GET /api/items HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example.com\r\nX-Big: aaa"
    assert _headers(head) == {
        "Access-Control-Allow-Origin": "https://app.example.com",
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Expose-Headers": "X-Total-Count",
        "Vary": "Origin",
    }
    assert _headers(b"GET /public/x HTTP/1.1\r\nOrigin: https://evil.com\r\nX: a") == {
        "Access-Control-Allow-Origin": "*"
    }


def test_refusal_cors_headers_grant_nothing_when_unclear() -> None:
    for head in [
        b"GET /api/items HTTP/1.1\r\nOrigin: https://evil.com\r\nX: a",  # refused origin
        b"GET /api/items HTTP/1.1\r\nOrigin: https://app.example.com\r\n .evil.com\r\nX: a",
        b"GET /api/items HTTP/1.1\r\nOrigin: https://app.example.com\r\n"
        b"Origin: https://app.example.com\r\nX: a",  # two Origin headers
        b"GET http://evil/api/items HTTP/1.1\r\nOrigin: https://app.example.com\r\n",
        b"GET /public/../api/items HTTP/1.1\r\nOrigin: https://app.example.com\r\n",
        b"xyz /api/items HTTP/1.1\r\nOrigin: https://app.example.com\r\n",
        b"body bytes, not a request line",
        b"",
    ]:
        assert {k for k in _headers(head) if k.startswith("Access-Control-")} == set(), head
