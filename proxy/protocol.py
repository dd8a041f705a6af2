"""The edge's HTTP/1 connection handling: aiohttp's low-level server, hardened.

aiohttp's :class:`~aiohttp.web_protocol.RequestHandler` parses requests well, but
three things the edge needs it does not do on its own:

- a request head that does not complete within ``timeouts.client_header`` closes
  the connection (slowloris): aiohttp only has an idle keep-alive timer;
- a request refused by the parser (oversized header or request line, too many
  headers, malformed syntax, smuggling attempts) is answered 431 / 414 / 400 with
  the CORS headers the route grants where they can be told, instead of a bare 400;
- such a refusal is logged as one line, never as a traceback.

This module is the only one that touches aiohttp's private connection API
(``_request_count``, ``_waiter``, ``_force_close``, ``handle_error``); it is pinned
to aiohttp 3.14 (see ``pyproject.toml``) and covered by ``tests/hardening``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import HttpVersion10, HttpVersion11, web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler, _ErrInfo

from .cors import Decision, decide
from .origins import parse_origin
from .policy import Config

log = logging.getLogger("cors_edge")

# The bytes of a refused request head kept to find its route and Origin (bounded).
_HEAD_KEEP = 16 * 1024
_REQUEST_LINE = re.compile(rb"([A-Z]{1,20}) (/[\x21-\x7e]*) HTTP/1\.[01]\r\n")
_HEADER_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([\x20-\x7e]*?)[ \t]*\r\n")
_STAMPED = frozenset({Decision.ALLOWED, Decision.SAME_ORIGIN, Decision.NO_ORIGIN})
_TOO_MANY_HEADERS = "Too many headers"

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def refusal_status(exc: BaseException | None, head: bytes, max_line_size: int) -> int:
    """The status for a request the parser refused: 414, 431 or 400."""
    if isinstance(exc, LineTooLong):
        # The request line is the first line: if it is the long one, the target is.
        end = head.find(b"\n")
        return 414 if end == -1 or end > max_line_size else 431
    if isinstance(exc, HttpProcessingError) and _TOO_MANY_HEADERS in (exc.message or ""):
        return 431
    return 400


def refusal_cors_headers(policies: Config, head: bytes) -> list[tuple[str, str]]:
    """The CORS headers the route grants a request, read from its raw (refused) head.

    Only a well-formed request line with an origin-form target counts, and only the
    complete header lines before the offending one; anything unclear grants nothing.
    """
    line = _REQUEST_LINE.match(head)
    if line is None:
        return []
    method = line[1].decode("ascii")
    target = line[2].decode("ascii")
    origins: list[str] = []
    host: str | None = None
    position = line.end()
    while True:
        header = _HEADER_LINE.match(head, position)
        if header is None:
            if head[position : position + 1] in (b" ", b"\t"):
                return []  # a folded line: the last value is not what it seems
            break
        name = header[1].lower()
        if name == b"origin":
            origins.append(header[2].decode("ascii"))
        elif name == b"host":
            host = header[2].decode("ascii")
        position = header.end()
    verdict = decide(
        policies.routes,
        method,
        target.split("?", 1)[0],
        origins,
        self_origin=parse_origin(f"http://{host}") if host else None,
    )
    headers: list[tuple[str, str]] = []
    if verdict.decision in _STAMPED:
        headers.extend(verdict.headers)
    if verdict.vary:
        headers.append(("Vary", verdict.vary))
    return headers


_MESSAGES = {
    400: "malformed request refused by cors-edge",
    414: "request target too long",
    431: "request header fields too large or too many",
}


class EdgeRequestHandler(RequestHandler):
    """One client connection: aiohttp's handler plus a request-head deadline."""

    def __init__(
        self,
        manager: web.Server,
        *,
        policies: Callable[[], Config],
        client_header_timeout: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, **kwargs)
        self._policies = policies
        self._head_timeout = client_header_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_count = 0  # requests parsed when the deadline was armed
        self._head_bytes = bytearray()  # raw bytes of the head being received (bounded)
        self._refused_head = b""  # the head the parser refused, kept for the answer

    # --- request-head deadline ------------------------------------------------

    def _arm_head_deadline(self) -> None:
        if self._head_timeout > 0 and self._head_timer is None:
            self._head_count = self._request_count
            self._head_timer = self._loop.call_later(self._head_timeout, self._head_expired)

    def _disarm_head_deadline(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if self._force_close or self._request_count != self._head_count:
            return
        if self._waiter is None or self._waiter.done():
            return  # busy with a request: the head arrived; not ours to time
        transport = self.transport
        if transport is not None and self._head_bytes:
            transport.write(
                b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            )
        log.info("closing a connection whose request head did not arrive in time")
        self.force_close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm_head_deadline()  # the first request head must arrive in time too

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def eof_received(self) -> bool:  # type: ignore[override]  # asyncio allows a bool
        """A client that half-closes after sending its request (``shutdown(SHUT_WR)``)
        still gets its answer: keep the transport open for writing, finish what is in
        progress, then close. (aiohttp's default lets the transport close at once.)"""
        waiter = self._waiter
        if waiter is not None and not waiter.done() and not self._messages:
            return False  # idle between requests: nothing to answer, close now
        request = self._current_request
        if request is not None and not request.content.is_eof():
            # Its body can never be completed: close, forwarding nothing more.
            self.force_close()
            return False
        self.close()
        return True

    def data_received(self, data: bytes) -> None:
        waiting = self._waiter is not None and not self._waiter.done()
        if data and waiting and not self._upgraded:
            # Between requests: these bytes start (or continue) a request head.
            self._arm_head_deadline()
        if len(self._head_bytes) < _HEAD_KEEP and not self._upgraded:
            self._head_bytes += data[: _HEAD_KEEP - len(self._head_bytes)]
        before = self._request_count
        super().data_received(data)
        if self._request_count != before:
            self._disarm_head_deadline()
            if any(isinstance(message, _ErrInfo) for message, _ in self._messages):
                self._refused_head = bytes(self._head_bytes)  # for handle_error()
            self._head_bytes.clear()

    # --- parser refusals ------------------------------------------------------

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        head, self._refused_head = self._refused_head, b""
        self._disarm_head_deadline()
        status = refusal_status(exc, head, self.max_line_size)
        log.warning(
            "refused a malformed request from %s with %d: %s",
            request.remote,
            status,
            " ".join((message or type(exc).__name__).split())[:200],  # one line per refusal
        )
        if request.writer.output_size > 0:
            raise ConnectionError("a response is already on the wire")
        headers: list[tuple[str, str]] = []
        if status in (414, 431):
            # Size refusals can meet a browser's request (a cookie grown too large):
            # the page may read them. Malformed requests are never a browser's.
            try:
                headers = refusal_cors_headers(self._policies(), head)
            except Exception:  # a refusal must never fail: answer without CORS headers
                log.exception("could not work out the CORS headers of a refused request")
        headers.append(("Content-Type", "application/json"))
        body = json.dumps({"error": _MESSAGES.get(status, "refused"), "status": status})
        response = web.Response(status=status, text=body, headers=headers)
        response.force_close()
        return response


_HTTP_VERSIONS = frozenset({HttpVersion10, HttpVersion11})


def guard_http_version(handler: Handler) -> Handler:
    """Refuse what the parser lets through as HTTP/0.9 (or any version but 1.0 and 1.1).

    llhttp reads ``GET /path\\r\\n`` (say, a target with a CR LF injected) as an
    HTTP/0.9 request; the edge never forwards one.
    """

    async def guarded(request: web.BaseRequest) -> web.StreamResponse:
        if request.version not in _HTTP_VERSIONS:
            log.warning(
                "refused an HTTP/%d.%d request from %s",
                request.version.major,
                request.version.minor,
                request.remote,
            )
            body = json.dumps({"error": _MESSAGES[400], "status": 400})
            response = web.Response(status=400, text=body, content_type="application/json")
            response.force_close()
            return response
        return await handler(request)

    return guarded


class EdgeHTTPServer(web.Server):
    """aiohttp's low-level server making :class:`EdgeRequestHandler` connections."""

    def __init__(
        self,
        handler: Handler,
        *,
        policies: Callable[[], Config],
        client_header_timeout: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(guard_http_version(handler), **kwargs)
        self._policies = policies
        self._client_header_timeout = client_header_timeout

    def __call__(self) -> RequestHandler:
        return EdgeRequestHandler(
            self,
            loop=self._loop,
            policies=self._policies,
            client_header_timeout=self._client_header_timeout,
            **self._kwargs,
        )
