"""proxy/server.py: an EdgeServer in-process, in front of the real Flask app."""

from __future__ import annotations

import json

from proxy.loader import load_policy_text
from proxy.records import ErrorKind, RequestError
from tests.e2e.http import fetch
from tests.support import Upstream

from .inprocess import closed_port, exchange, head_of, one_response, running_edge

APP = "http://localhost:3000"
POLICY = """
timeouts: {connect: 2, read: 5, client_body: 0.5}
limits: {max_body_bytes: 100000, max_header_bytes: 1024}
routes:
  - path: /api/**
    origins: [http://localhost:3000]
    methods: [GET, POST, PUT]
    expose_headers: [X-Total-Count]
    supports_credentials: true
"""
API = "routes[0] path /api/**"


async def test_an_allowed_request_is_forwarded_stamped_and_recorded(upstream: Upstream) -> None:
    async with running_edge(POLICY, upstream.url) as edge:
        answer = await fetch("GET", edge.url + "/api/items", {"Origin": APP})
        record = await edge.record()
    assert answer.status == 200
    assert answer.cors() == {
        "Access-Control-Allow-Origin": APP,
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Expose-Headers": "X-Total-Count",
    }
    assert answer.headers.getall("Vary") == ["Accept-Language, Origin"]  # the app's, then ours
    assert (record.decision, record.route, record.status) == ("allowed", API, 200)
    assert record.origin == APP and record.generation == 1 and record.error is None
    assert record.bytes_sent == len(answer.body) and record.upstream_ms is not None


async def test_the_upstreams_own_cors_headers_never_pass(upstream: Upstream) -> None:
    async with running_edge(POLICY, upstream.url) as edge:
        answer = await fetch("GET", edge.url + "/api/legacy-cors", {"Origin": APP})
    assert answer.status == 200
    assert answer.headers.getall("Access-Control-Allow-Origin") == [APP]  # not the app's "*"


async def test_a_dead_upstream_gets_a_json_502_the_page_can_read() -> None:
    async with running_edge(POLICY, f"http://127.0.0.1:{closed_port()}") as edge:
        answer = await fetch("GET", edge.url + "/api/items", {"Origin": APP})
        record = await edge.record()
    assert answer.status == 502
    assert answer.json() == {"error": "upstream unavailable", "status": 502}
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.headers["Server"] == "cors-edge"
    assert answer.headers["Access-Control-Allow-Origin"] == APP
    assert answer.headers["Vary"] == "Origin"
    assert record.error == RequestError(ErrorKind.CONNECT) and not record.error.is_client


async def test_a_declared_body_past_the_limit_is_413_before_the_upstream(
    upstream: Upstream,
) -> None:
    async with running_edge(POLICY, upstream.url) as edge:
        before = len(upstream.requests())
        answer = await fetch("POST", edge.url + "/api/echo", {"Origin": APP}, b"x" * 100001)
        record = await edge.record()
    assert answer.status == 413
    assert answer.json() == {"error": "request body too large", "status": 413}
    assert answer.headers["Access-Control-Allow-Origin"] == APP
    assert record.status == 413 and record.error is None  # refused on its declared length
    assert len(upstream.requests()) == before


async def test_a_stalled_small_body_is_408_and_the_connection_closes(upstream: Upstream) -> None:
    async with running_edge(POLICY, upstream.url) as edge:
        data = await one_response(
            edge.port,
            b"POST /api/echo HTTP/1.1\r\nHost: e\r\nOrigin: http://localhost:3000\r\n"
            b"Content-Length: 10\r\n\r\nabc",
        )
        record = await edge.record()
    assert data.startswith(b"HTTP/1.1 408 ")
    assert head_of(data)["connection"] == "close"
    assert record.error == RequestError(ErrorKind.CLIENT_BODY_TIMEOUT) and record.error.is_client


async def test_a_swap_brings_the_new_config_and_its_generation(upstream: Upstream) -> None:
    async with running_edge(POLICY, upstream.url) as edge:
        assert (await fetch("GET", edge.url + "/api/ping", {"Origin": APP})).cors()
        edge.server.holder.swap(load_policy_text(POLICY.replace(APP, "https://other.test")))
        answer = await fetch("GET", edge.url + "/api/ping", {"Origin": APP})
        record = await edge.record(2)
    assert answer.status == 403 and not answer.cors()
    assert (record.decision, record.generation) == ("blocked", 2)


async def test_a_failing_observer_never_breaks_a_response(upstream: Upstream) -> None:
    def broken(record: object) -> None:
        raise RuntimeError("observer bug")

    async with running_edge(POLICY, upstream.url) as edge:
        edge.server.observers.insert(0, broken)
        answer = await fetch("GET", edge.url + "/api/ping")
        record = await edge.record()
    assert answer.status == 200 and answer.body == b"pong"
    assert record.decision == "no_origin"


async def test_a_parser_refusal_is_a_cors_edge_json_answer(upstream: Upstream) -> None:
    """Refusals made in protocol.py once carried aiohttp's own Server header."""
    async with running_edge(POLICY, upstream.url) as edge:
        data = await exchange(
            edge.port,
            b"GET /api/items HTTP/1.1\r\nHost: e\r\nOrigin: http://localhost:3000\r\n"
            b"Cookie: " + b"c" * 2000 + b"\r\n\r\n",
        )
    assert data.split(b" ", 2)[1] == b"431"  # (aiohttp answers parser refusals in HTTP/1.0)
    head = head_of(data)
    assert head["server"] == "cors-edge"
    assert head["content-type"].startswith("application/json")
    assert head["access-control-allow-origin"] == APP and head["vary"] == "Origin"
    body = json.loads(data.partition(b"\r\n\r\n")[2])
    assert body == {"error": "request header fields too large or too many", "status": 431}


async def test_a_malformed_request_is_refused_granting_nothing(upstream: Upstream) -> None:
    async with running_edge(POLICY, upstream.url) as edge:
        data = await exchange(
            edge.port, b"GET /api/items HTTP/1.1\r\nHost: e\r\nHost: f\r\nOrigin: " + APP.encode()
        )
    assert data.split(b" ", 2)[1] == b"400"
    head = head_of(data)
    assert head["server"] == "cors-edge" and "access-control-allow-origin" not in head
