"""Edge answers written as raw bytes behave on the wire like aiohttp's own responses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from proxy.cors import decide
from proxy.edge_answers import RawAnswer, edge_answer
from proxy.loader import load_policy_text

POLICY = load_policy_text(
    "routes:\n  - path: /api/**\n    origins: [http://localhost:3000]\n"
    "    methods: [GET, PUT]\n    supports_credentials: true\n"
)


async def handler(request: web.BaseRequest) -> web.StreamResponse:
    verdict = decide(
        POLICY.routes,
        request.method,
        request.path,
        request.headers.getall("Origin", ()),
        request_method=request.headers.get("Access-Control-Request-Method"),
    )
    return edge_answer(verdict, request)


@pytest.fixture
async def port() -> AsyncIterator[int]:
    runner = web.ServerRunner(web.Server(handler))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield runner.addresses[0][1]
    await runner.cleanup()


async def exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    received = await asyncio.wait_for(reader.read(), 5)  # until the server closes
    writer.close()
    return received


PREFLIGHT = (
    b"OPTIONS /api/x HTTP/1.1\r\nHost: e\r\nOrigin: http://localhost:3000\r\n"
    b"Access-Control-Request-Method: PUT\r\n"
)


async def test_keep_alive_then_close(port: int) -> None:
    data = await exchange(port, PREFLIGHT + b"\r\n" + PREFLIGHT + b"Connection: close\r\n\r\n")
    first, second = data.split(b"HTTP/1.1 204 No Content\r\n")[1:]
    for answer in (first, second):
        assert b"Access-Control-Allow-Origin: http://localhost:3000\r\n" in answer
        assert b"Access-Control-Allow-Methods: GET, PUT\r\n" in answer
        assert b"Access-Control-Allow-Credentials: true\r\n" in answer
        assert b"\r\nDate: " in answer and b"Server: cors-edge\r\n" in answer
    assert b"Connection: close" not in first and b"Connection: close\r\n" in second
    assert data.endswith(b"\r\n\r\n")  # no body after a 204


async def test_refusal_has_a_json_body_and_no_cors_headers(port: int) -> None:
    data = await exchange(
        port,
        b"POST /api/x HTTP/1.1\r\nHost: e\r\nOrigin: https://evil.test\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n",
    )
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert b"access-control" not in head.lower()
    assert b"Vary: Origin\r\n" in head + b"\r\n"
    assert f"Content-Length: {len(body)}".encode() in head
    assert body == b'{"error": "cross-origin request refused by cors-edge: origin not allowed"}'


async def test_http_1_0_gets_an_ordinary_aiohttp_response(port: int) -> None:
    data = await exchange(port, PREFLIGHT.replace(b"HTTP/1.1", b"HTTP/1.0") + b"\r\n")
    assert data.startswith(b"HTTP/1.0 204 No Content\r\n")
    assert b"Access-Control-Allow-Origin: http://localhost:3000\r\n" in data


async def test_raw_answer_refuses_a_closed_transport() -> None:
    class Closed:
        transport = None

    with pytest.raises(ConnectionResetError):
        await RawAnswer(204, b"", True).prepare(Closed())  # type: ignore[arg-type]


REFUSED = b" /api/x HTTP/1.1\r\nHost: e\r\nOrigin: https://evil.test\r\nConnection: close\r\n\r\n"


def _without_date(head: bytes) -> list[bytes]:
    return [line for line in head.split(b"\r\n") if not line.startswith(b"Date:")]


async def test_a_refusal_of_head_has_the_head_of_a_get_and_no_body(port: int) -> None:
    get_head, _, body = (await exchange(port, b"GET" + REFUSED)).partition(b"\r\n\r\n")
    head = await exchange(port, b"HEAD" + REFUSED)
    assert body and head.endswith(b"\r\n\r\n") and head.count(b"\r\n\r\n") == 1
    assert _without_date(head[:-4]) == _without_date(get_head)  # Content-Length included
