"""The edge's HTTP/1 connection handling: aiohttp's low-level server, hardened.

aiohttp's :class:`~aiohttp.web_protocol.RequestHandler` parses requests well, but
three things the edge needs it does not do on its own:

- a request head that does not complete within ``timeouts.client_header`` closes
  the connection (slowloris): aiohttp only has an idle keep-alive timer;
- a request refused by the parser (oversized header or request line, too many
  headers, malformed syntax, smuggling attempts) is answered 431 / 414 / 400 with
  the CORS headers the route grants where they can be told, instead of a bare 400;
- such a refusal is logged as one line, never as a traceback.

A refused head is decided like any request, by the server's own call
(:meth:`proxy.server.EdgeServer.decide_refused`, handed in as ``decide_refused``),
and answered by :func:`proxy.edge_answers.error_answer`.

This is the one module on the server side that uses aiohttp's private API: it
subclasses ``aiohttp.web_protocol.RequestHandler`` and reads or overrides its
internals (``_request_count``, ``_waiter``, ``_force_close``, ``_upgraded``,
``_messages``, ``_current_request``, ``_loop``, the ``_ErrInfo`` messages the parser
queues, ``handle_error``, ``eof_received``, ``data_received``), reads ``web.Server``'s
``_loop`` and ``_kwargs``, writes ``100 Continue`` through the undocumented
``request.writer``, and drives the undocumented ``web.Server.pre_shutdown``.
aiohttp is pinned to 3.14 (``pyproject.toml``); ``tests/test_aiohttp_contract.py``
checks these names and signatures, ``tests/hardening`` the behaviour built on them.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import HttpVersion10, HttpVersion11, web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler, _ErrInfo
from multidict import CIMultiDict, CIMultiDictProxy

from .cors import Verdict
from .edge_answers import SERVER, error_answer
from .parser_guard import UpgradeSafeParser

log = logging.getLogger("cors_edge")

# The bytes of a refused request head kept to find its route and Origin (bounded).
_HEAD_KEEP = 16 * 1024
_REQUEST_LINE = re.compile(rb"([A-Z]{1,20}) (/[\x21-\x7e]*) HTTP/1\.[01]\r\n")
_HEADER_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([\x20-\x7e]*?)[ \t]*\r\n")
_TOO_MANY_HEADERS = "Too many headers"

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
# method, raw path, header lines, peer address -> the verdict (the server's own call).
RefusedDecider = Callable[[str, str, CIMultiDictProxy[str], str | None], Verdict]


def refusal_status(exc: BaseException | None, head: bytes, max_line_size: int) -> int:
    """The status for a request the parser refused: 414, 431 or 400."""
    if isinstance(exc, LineTooLong):
        # The request line is the first line: if it is the long one, the target is.
        end = head.find(b"\n")
        return 414 if end == -1 or end > max_line_size else 431
    if isinstance(exc, HttpProcessingError) and _TOO_MANY_HEADERS in (exc.message or ""):
        return 431
    return 400


@dataclass(frozen=True, slots=True)
class RefusedHead:
    """What can be told of a refused request head: its request line and the complete,
    well-formed header lines before the one at fault."""

    method: str
    raw_path: str
    headers: CIMultiDictProxy[str]


def parse_refused_head(head: bytes) -> RefusedHead | None:
    """Read a refused head, or ``None`` when anything about it is unclear.

    Only a well-formed request line with an origin-form target counts; a folded
    header line means the last value is not what it seems, so nothing counts.
    """
    line = _REQUEST_LINE.match(head)
    if line is None:
        return None
    headers: CIMultiDict[str] = CIMultiDict()
    position = line.end()
    while True:
        header = _HEADER_LINE.match(head, position)
        if header is None:
            if head[position : position + 1] in (b" ", b"\t"):
                return None  # a folded line
            break
        headers.add(header[1].decode("ascii"), header[2].decode("ascii"))
        position = header.end()
    target = line[2].decode("ascii")
    return RefusedHead(line[1].decode("ascii"), target.split("?", 1)[0], CIMultiDictProxy(headers))


async def send_continue(request: web.BaseRequest) -> None:
    """Tell a client waiting on ``Expect: 100-continue`` to send its body.

    Never an HTTP/1.0 client: it cannot know a 1xx answer (RFC 9110 §10.1.1), and
    sends its body anyway."""
    if request.version >= HttpVersion11:
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")


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
        decide_refused: RefusedDecider,
        client_header_timeout: float,
        client_send_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, **kwargs)
        self._send_timeout = client_send_timeout
        self._send_timer: asyncio.TimerHandle | None = None
        # What is pipelined after an h2c/tcp Upgrade request is not lost (see parser_guard).
        self._parser = UpgradeSafeParser(self._parser)  # type: ignore[assignment]
        self._decide_refused = decide_refused
        self._head_timeout = client_header_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_count = 0  # requests parsed when the deadline was armed
        self._head_bytes = bytearray()  # raw bytes of the head being received (bounded)
        self._refused_head = b""  # the head the parser refused, kept for the answer

    @property
    def saw_non_ascii(self) -> bool:
        """Whether any byte past ASCII arrived on this connection (see parser_guard)."""
        parser = self._parser
        return not isinstance(parser, UpgradeSafeParser) or parser.non_ascii

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
                b"HTTP/1.1 408 Request Timeout\r\nServer: cors-edge\r\nConnection: close\r\n"
                b"Content-Length: 0\r\n\r\n"
            )
        log.info("closing a connection whose request head did not arrive in time")
        self.force_close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm_head_deadline()  # the first request head must arrive in time too

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm_head_deadline()
        self._disarm_send_deadline()
        super().connection_lost(exc)

    # --- a client that stops reading ------------------------------------------

    def pause_writing(self) -> None:
        """The client's socket is full: every answer (edge-made or relayed) waits for
        it to drain, for at most ``timeouts.client_send`` without any progress."""
        super().pause_writing()
        if self._send_timeout and self._send_timer is None:
            self._send_timer = self._loop.call_later(self._send_timeout, self._send_expired)

    def resume_writing(self) -> None:
        self._disarm_send_deadline()
        super().resume_writing()

    def _disarm_send_deadline(self) -> None:
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

    def _send_expired(self) -> None:
        self._send_timer = None
        if self._current_request is not None:
            # A handler is writing (a relayed stream, a WebSocket): it bounds its own
            # writes by timeouts.client_send and records why; look again later.
            self._send_timer = self._loop.call_later(self._send_timeout or 1, self._send_expired)
            return
        log.info(
            "closing a connection whose client read nothing for %g s while answers waited "
            "(timeouts.client_send)",
            self._send_timeout,
        )
        if self.transport is not None:
            self.transport.abort()

    def eof_received(self) -> bool:  # type: ignore[override]  # asyncio allows a bool
        """A client that half-closes after sending its request (``shutdown(SHUT_WR)``)
        still gets its answer: keep the transport open for writing, finish what is in
        progress, then close. (aiohttp's default lets the transport close at once.)"""
        if self._upgraded:
            # A WebSocket client that ends its TCP stream has gone: let the transport
            # close, so the relay sees it and closes the upstream side (1001).
            return False
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
            response = super().handle_error(request, status, exc, message)
            response.headers["Server"] = SERVER  # aiohttp's own 500: no version banner
            return response
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
        verdict: Verdict | None = None
        if status in (414, 431):
            # Size refusals can meet a browser's request (a cookie grown too large):
            # the page may read them. Malformed requests are never a browser's.
            try:
                verdict = self._refused_verdict(head, request.remote)
            except Exception:  # a refusal must never fail: answer without CORS headers
                log.exception("could not work out the CORS headers of a refused request")
        # No body on an answer to HEAD (RFC 9112 §6.3); aiohttp cannot tell, as the
        # request it hands over for a refused head is a placeholder.
        head_only = head.startswith(b"HEAD ")
        response = error_answer(
            verdict, status, _MESSAGES.get(status, "refused"), head_only=head_only
        )
        response.force_close()
        return response

    def _refused_verdict(self, head: bytes, peer: str | None) -> Verdict | None:
        refused = parse_refused_head(head)
        if refused is None:
            return None
        return self._decide_refused(refused.method, refused.raw_path, refused.headers, peer)


_HTTP_VERSIONS = frozenset({HttpVersion10, HttpVersion11})
# uri-host [":" port] (RFC 3986 §3.2.2): an IP literal or a reg-name, never userinfo.
_HOSTS_SEEN: dict[str, bool] = {}
_HOSTS_KEPT = 1024
_HOST = re.compile(r"(?:\[[0-9A-Za-z:.%~_-]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::[0-9]*)?")


def request_refusal(request: web.BaseRequest) -> str | None:
    """Why a request the parser accepted is still refused with 400, or ``None``.

    - HTTP/0.9 (or any version but 1.0 and 1.1): llhttp reads ``GET /path\\r\\n``
      (say, a target with a CR LF injected) as an HTTP/0.9 request.
    - A ``Host`` that is not ``host[:port]`` (RFC 9110 §7.2): userinfo
      (``user@host``), a path, spaces; each hop may read those differently.
    - Header bytes that are not UTF-8 (obs-text such as Latin-1): the parser keeps
      them as surrogates that cannot go upstream unchanged, so they are refused
      rather than silently dropped or rewritten.
    """
    version = request.version
    if version not in _HTTP_VERSIONS:
        return f"HTTP/{version.major}.{version.minor} request"
    host = request.headers.get("Host")
    if host is not None:
        valid = _HOSTS_SEEN.get(host)
        if valid is None:
            valid = _HOST.fullmatch(host) is not None
            if len(_HOSTS_SEEN) < _HOSTS_KEPT:  # hosts repeat: the check runs once each
                _HOSTS_SEEN[host] = valid
        if not valid:
            return "Host header that is not host[:port]"
    # Only a connection that ever sent a byte past ASCII needs its headers read.
    if getattr(request.protocol, "saw_non_ascii", True):
        for name, value in request.raw_headers:
            if not value.isascii():
                try:
                    value.decode("utf-8")
                except UnicodeDecodeError:
                    return f"{name.decode('ascii', 'replace')} header with bytes that are not UTF-8"
    return None


def guard_http_version(handler: Handler) -> Handler:
    """Refuse what the parser lets through but the edge never forwards (see
    :func:`request_refusal`) with 400 and a close."""

    async def guarded(request: web.BaseRequest) -> web.StreamResponse:
        refusal = request_refusal(request)
        if refusal is not None:
            log.warning("refused a request from %s with 400: %s", request.remote, refusal)
            response = error_answer(None, 400, _MESSAGES[400])
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
        decide_refused: RefusedDecider,
        client_header_timeout: float,
        client_send_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(guard_http_version(handler), **kwargs)
        self._decide_refused = decide_refused
        self._client_header_timeout = client_header_timeout
        self._client_send_timeout = client_send_timeout

    async def close_connections(self, timeout: float) -> None:
        """aiohttp's own connection shutdown: idle keep-alive connections close at
        once, busy ones right after their response (no new request on them). It may
        take up to twice ``timeout``: run it under a deadline of your own."""
        self.pre_shutdown()
        await self.shutdown(timeout)

    def __call__(self) -> RequestHandler:
        return EdgeRequestHandler(
            self,
            loop=self._loop,
            decide_refused=self._decide_refused,
            client_header_timeout=self._client_header_timeout,
            client_send_timeout=self._client_send_timeout,
            **self._kwargs,
        )
