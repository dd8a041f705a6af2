"""The two upstream legs compared: aiohttp's ``ClientSession`` (configured as
``proxy.forward.Upstream`` configures it, and called the way forward.py called it for
plain HTTP before the lean client) and the lean client (``proxy.upstream_pool``), each
reduced to what the edge's client would see: the status the edge answers with, or the
upstream's status, reason, headers and body (or a body broken off).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDict

from proxy.forward import Upstream
from proxy.policy import Limits, Timeouts
from proxy.upstream_errors import UpstreamError
from proxy.upstream_pool import UpstreamPool

EDGE = "<answered by the edge>"


@dataclass(frozen=True)
class Req:
    method: str = "GET"
    target: str = "/"
    headers: tuple[tuple[str, str], ...] = (("Host", "app.test"), ("X-Forwarded-For", "1.2.3.4"))
    body: bytes | None = None
    stream: bool = False  # send the body as an async iterator of pieces, as limited_body does
    chunked: bool = False  # the client sent no Content-Length (its body came chunked)


@dataclass(frozen=True)
class Outcome:
    status: int
    reason: str = EDGE
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    aborted: bool = False  # the body broke off after the head (the edge aborts the client)


def _edge(status: int) -> Outcome:
    return Outcome(status)


def _body(request: Req) -> bytes | AsyncIterator[bytes] | None:
    if request.body is None or not request.stream:
        return request.body
    data = request.body

    async def pieces() -> AsyncIterator[bytes]:
        third = max(1, len(data) // 3)
        for start in range(0, len(data), third):
            await asyncio.sleep(0)
            yield data[start : start + third]

    return pieces()


def _headers(request: Req) -> CIMultiDict[str]:
    headers = CIMultiDict(request.headers)
    if request.body is not None and not request.chunked:
        headers.setdefault("Content-Length", str(len(request.body)))
    return headers


def _response(status: int, reason: str, headers: object, body: bytes, aborted: bool) -> Outcome:
    # Names compare case-insensitively: aiohttp respelled the ones it knows (ETag -> Etag).
    items = tuple((name.lower(), value) for name, value in headers.items())  # type: ignore[attr-defined]
    return Outcome(status, reason, items, b"" if aborted else body, aborted)


async def run_old(url: str, requests: list[Req], timeouts: Timeouts) -> list[Outcome]:
    upstream = Upstream(url, timeouts, Limits())
    await upstream.start()
    try:
        return [await _old_one(upstream, request) for request in requests]
    finally:
        await upstream.close()


async def _old_one(upstream: Upstream, request: Req) -> Outcome:
    try:
        response = await upstream.websocket_session.request(
            request.method,
            upstream.url(request.target),
            headers=_headers(request),
            data=_body(request),
            allow_redirects=False,
            compress=None,
            chunked=None,
        )
    except (TimeoutError, aiohttp.ServerTimeoutError):
        return _edge(504)
    except (aiohttp.ClientError, OSError):
        return _edge(502)
    limit = upstream.limits.max_upstream_header_bytes
    if sum(len(name) + len(value) + 4 for name, value in response.raw_headers) > limit:
        response.close()  # what forward.py did on top of aiohttp's per-line limit
        return _edge(502)
    body = b""
    aborted = False
    try:
        while True:
            chunk, _ = await response.content.readchunk()
            if not chunk:
                if response.content.at_eof():
                    break
                continue
            body += chunk
    except (TimeoutError, aiohttp.ClientError, OSError):
        aborted = True
    finally:
        response.release()
    return _response(response.status, response.reason or "", response.headers, body, aborted)


async def run_new(url: str, requests: list[Req], timeouts: Timeouts) -> list[Outcome]:
    pool = UpstreamPool.for_config(url, timeouts, Limits())
    try:
        return [await _new_one(pool, request) for request in requests]
    finally:
        await pool.close()


async def _new_one(pool: UpstreamPool, request: Req) -> Outcome:
    try:
        response = await pool.request(
            request.method, request.target, _headers(request).items(), _body(request)
        )
    except UpstreamError as error:
        return _edge(error.status)
    body = b""
    aborted = False
    try:
        while chunk := await response.read_chunk():
            body += chunk
    except UpstreamError:
        aborted = True
    finally:
        response.release()
    return _response(response.status, response.reason, response.headers, body, aborted)
