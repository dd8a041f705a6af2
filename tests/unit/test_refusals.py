"""proxy/refusals.py (and proxy/protocol.py's use of it): refusal statuses, and what a
refused request head is granted.

A refused head is decided by the server's own call (the verdict cache of the snapshot
in force, the client's real scheme); the aiohttp internals protocol.py relies on are
pinned in tests/test_aiohttp_contract.py.
"""

from __future__ import annotations

import dataclasses
import ipaddress

from aiohttp.http_exceptions import BadHttpMessage, LineTooLong

from proxy.cors import Decision, Verdict
from proxy.forward import Upstream
from proxy.loader import load_policy_text
from proxy.policy import Config
from proxy.records import PolicyHolder
from proxy.refusals import parse_refused_head, refusal_status
from proxy.server import EdgeServer
from tests.hardening.conftest import HARDENING_POLICY

POLICIES = load_policy_text(HARDENING_POLICY)


def edge(config: Config = POLICIES) -> EdgeServer:
    """An edge server that is never started: deciding needs no upstream."""
    upstream = Upstream(config.upstream, config.timeouts, config.limits)
    return EdgeServer(PolicyHolder(config), upstream)


EDGE = edge()


def verdict(head: bytes, server: EdgeServer = EDGE, peer: str = "127.0.0.1") -> Verdict | None:
    refused = parse_refused_head(head)
    if refused is None:
        return None
    return server.decide_refused(refused.method, refused.raw_path, refused.headers, peer)


def _headers(head: bytes) -> dict[str, str]:
    decided = verdict(head)
    return dict(decided.answer_headers()) if decided is not None else {}


def test_refusal_status() -> None:
    long_target = b"GET /" + b"a" * 9000
    assert refusal_status(LineTooLong(b"x", 8190), long_target, 8190) == 414
    assert refusal_status(LineTooLong(b"x", 8190), b"GET / HTTP/1.1\r\nX: aaaa", 8190) == 431
    assert refusal_status(BadHttpMessage("Too many headers received"), b"", 8190) == 431
    assert refusal_status(BadHttpMessage("Duplicate 'Host' header found."), b"", 8190) == 400
    assert refusal_status(None, b"", 8190) == 400


def test_refused_heads_grant_what_the_route_grants() -> None:
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


def test_refused_heads_grant_nothing_when_unclear() -> None:
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


def test_a_refused_preflight_is_answered_as_the_request_itself() -> None:
    head = (
        b"OPTIONS /api/items HTTP/1.1\r\nOrigin: https://app.example.com\r\n"
        b"Access-Control-Request-Method: PUT\r\nX: a"
    )
    decided = verdict(head)
    assert decided is not None and decided.decision is Decision.ALLOWED
    assert "Access-Control-Allow-Methods" not in dict(decided.answer_headers())


def test_refused_heads_are_decided_with_the_clients_real_scheme() -> None:
    trusting = edge(
        dataclasses.replace(POLICIES, trust_forwarded_from=(ipaddress.ip_network("10.0.0.0/8"),))
    )
    head = (
        b"GET /api/items HTTP/1.1\r\nHost: edge.test\r\nOrigin: https://edge.test\r\n"
        b"X-Forwarded-Proto: https\r\nX-Big: aaa"
    )
    trusted = verdict(head, trusting, peer="10.1.2.3")
    assert trusted is not None and trusted.decision is Decision.SAME_ORIGIN
    untrusted = verdict(head, trusting, peer="192.0.2.1")  # its X-Forwarded-Proto is ignored
    assert untrusted is not None and untrusted.decision is Decision.BLOCKED


def test_refused_heads_go_through_the_snapshots_verdict_cache() -> None:
    server = edge()
    head = b"GET /api/items HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example.com\r\nX: a"
    first, second = verdict(head, server), verdict(head, server)
    assert first is not None and first is second  # the cached verdict, not a new decision
    server.holder.swap(POLICIES)
    assert verdict(head, server) is not first  # a new generation brings a new cache
