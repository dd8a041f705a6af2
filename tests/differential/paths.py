"""The two upstream legs compared, each reduced to what the edge's client would see: the
status the edge answers with, or the upstream's status, reason, headers and body (or a
body broken off).

- The reference: aiohttp's ``ClientSession``, configured and called exactly as
  ``proxy/forward.py`` did for plain HTTP before the lean client (kept here, frozen, so
  the comparison does not move when forward.py does), including its check of the whole
  head against ``limits.max_upstream_header_bytes``.
- The lean client: ``proxy.upstream_pool``, called as forward.py calls it now.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDict
from yarl import URL

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


class OldLeg:
    """aiohttp's client as forward.py set it up (one connector, sock timeouts, no extras)."""

    def __init__(self, url: str, timeouts: Timeouts, limits: Limits) -> None:
        self.limits = limits
        connector: aiohttp.BaseConnector
        if url.startswith("unix:"):
            self.base = "http://upstream"
            connector = aiohttp.UnixConnector(
                path=url[len("unix:") :],
                limit=limits.max_upstream_connections,
                keepalive_timeout=timeouts.upstream_idle,
            )
        else:
            self.base = url.rstrip("/")
            # forward.py's own connector only skipped happy eyeballs for a literal address
            # (proxy/connector.py, gone since): the bytes on the wire are the same.
            connector = aiohttp.TCPConnector(  # the canned upstreams are on 127.0.0.1
                limit=limits.max_upstream_connections,
                family=socket.AF_INET,
                use_dns_cache=True,
                ttl_dns_cache=10,
                enable_cleanup_closed=False,
                keepalive_timeout=timeouts.upstream_idle,
            )
        self.session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            timeout=aiohttp.ClientTimeout(
                total=None, connect=None, sock_connect=timeouts.connect, sock_read=timeouts.read
            ),
            read_bufsize=256 * 1024,
            max_line_size=limits.max_upstream_header_line,
            max_field_size=limits.max_upstream_header_line,
        )

    def url(self, raw_target: str) -> URL:
        return URL(self.base + raw_target, encoded=True)


async def run_old(url: str, requests: list[Req], timeouts: Timeouts) -> list[Outcome]:
    upstream = OldLeg(url, timeouts, Limits())
    try:
        return [await _old_one(upstream, request) for request in requests]
    finally:
        await upstream.session.close()


async def _old_one(upstream: OldLeg, request: Req) -> Outcome:
    try:
        response = await upstream.session.request(
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
