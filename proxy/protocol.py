"""The edge's HTTP/1 connection handling: aiohttp's low-level server, hardened.

aiohttp's :class:`~aiohttp.web_protocol.RequestHandler` parses requests well, but
four things the edge needs it does not do on its own:

- a request head that does not complete within ``timeouts.client_header`` closes
  the connection (slowloris): aiohttp only has an idle keep-alive timer;
- a request refused by the parser (oversized header or request line, too many
  headers, malformed syntax, smuggling attempts) is answered 431 / 414 / 400 with
  the CORS headers the route grants where they can be told, instead of a bare 400;
- such a refusal is logged as one line, never as a traceback;
- a plain request the edge answers itself (a preflight, mostly) is answered as soon
  as it is parsed, without the task, request and response objects aiohttp would
  make for it (:mod:`proxy.early_answers`; the server decides, through
  :meth:`proxy.server.EdgeServer.answer_early`). Such a connection keeps its own
  keep-alive timer, as aiohttp's counts from the last request it handled.

A refused head is decided like any request, by the server's own call
(:meth:`proxy.server.EdgeServer.decide_refused`, handed in as ``decide_refused``),
and answered by :func:`proxy.edge_answers.refusal_answer`.

This is the one module on the server side that uses aiohttp's private API: it
subclasses ``aiohttp.web_protocol.RequestHandler`` and reads or overrides its
internals (``_request_count``, ``_waiter``, ``_force_close``, ``_upgraded``,
``_messages``, ``_current_request``, ``_loop``, ``_parser``, the ``_ErrInfo`` messages
the parser queues, ``handle_error``, ``eof_received``, ``data_received``, the
undocumented ``finish_response``), reads ``web.Server``'s
``_loop`` and ``_kwargs``, writes ``100 Continue`` through the undocumented
``request.writer``, and drives the undocumented ``web.Server.pre_shutdown``.
aiohttp is pinned to 3.14 (``pyproject.toml``); ``tests/test_aiohttp_contract.py``
checks these names and signatures, ``tests/hardening`` the behaviour built on them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import HttpVersion11, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.http_parser import RawRequestMessage
from aiohttp.web_protocol import RequestHandler, _ErrInfo
from multidict import CIMultiDictProxy

from .cors import Verdict
from .early_answers import EarlyAnswerParser
from .edge_answers import SERVER, refusal_answer
from .parser_guard import UpgradeSafeParser
from .refusals import MESSAGES, head_refusal, parse_refused_head, refusal_status

log = logging.getLogger("cors_edge")

# The bytes of a refused request head kept to find its route and Origin (bounded).
_HEAD_KEEP = 16 * 1024

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
# method, raw path, header lines, peer address -> the verdict (the server's own call).
RefusedDecider = Callable[[str, str, CIMultiDictProxy[str], str | None], Verdict]
# a parsed request, peer address -> its whole answer, or None (the server's own call).
EarlyAnswerer = Callable[[RawRequestMessage, str | None], bytes | None]


def peer_address(transport: asyncio.BaseTransport) -> str | None:
    """The client's IP address, ``None`` when it has none (a UNIX socket)."""
    peername = transport.get_extra_info("peername")
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return None


async def send_continue(request: web.BaseRequest) -> None:
    """Tell a client waiting on ``Expect: 100-continue`` to send its body.

    Never an HTTP/1.0 client: it cannot know a 1xx answer (RFC 9110 §10.1.1), and
    sends its body anyway."""
    if request.version >= HttpVersion11:
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")


class EdgeRequestHandler(RequestHandler):
    """One client connection: aiohttp's handler plus a request-head deadline, parser
    refusals answered with their route's CORS headers, early answers, and every
    pipelined request answered before a half-close ends the connection."""

    def __init__(
        self,
        manager: web.Server,
        *,
        decide_refused: RefusedDecider,
        answer_early: EarlyAnswerer | None,
        client_header_timeout: float,
        client_send_timeout: float | None = None,
        keepalive_timeout: float = 75.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, keepalive_timeout=keepalive_timeout, **kwargs)
        self._send_timeout = client_send_timeout
        self._send_timer: asyncio.TimerHandle | None = None
        # What is pipelined after an h2c/tcp Upgrade request is not lost (see parser_guard).
        self._guard = UpgradeSafeParser(self._parser)
        self._parser = self._guard  # type: ignore[assignment]
        if answer_early is not None:
            self._parser = EarlyAnswerParser(self._guard, self._answer_early)  # type: ignore[assignment]
        self._answerer = answer_early
        self._peer: str | None = None
        self._idle_timeout = keepalive_timeout
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_until = 0.0  # keep-alive after early answers: close when idle past this
        self._idle_count = 0  # requests parsed at the last early answer
        self._decide_refused = decide_refused
        self._head_timeout = client_header_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_count = 0  # requests parsed when the deadline was armed
        self._head_bytes = bytearray()  # raw bytes of the head being received (bounded)
        self._refused_head = b""  # the head the parser refused, kept for the answer
        self._close_when_answered = False  # half-closed with pipelined requests queued

    @property
    def saw_non_ascii(self) -> bool:
        """Whether any byte past ASCII arrived on this connection (see parser_guard)."""
        return self._guard.non_ascii

    # --- answers written as requests are parsed (proxy/early_answers.py) --------

    def _answer_early(self, message: RawRequestMessage) -> bool:
        """Answer ``message`` now if the connection and the request allow it."""
        waiter, transport = self._waiter, self.transport
        if (
            waiter is None
            or waiter.done()  # aiohttp is (or is about to be) busy with a request
            or self._messages
            or self.writing_paused
            or transport is None
            or transport.is_closing()
            or message.version != HttpVersion11
            or message.should_close
            or message.upgrade
            or head_refusal(
                message.version, message.headers, message.raw_headers, self._guard.non_ascii
            )
        ):
            return False
        if self._peer is None:
            self._peer = peer_address(transport)
        assert self._answerer is not None
        try:
            data = self._answerer(message, self._peer)
        except Exception:  # never lose a request to a bug here: aiohttp's way answers it
            log.exception("could not answer a request early")
            return False
        if data is None:
            return False
        transport.write(data)
        self._request_count += 1
        self._idle_count = self._request_count
        # aiohttp's keep-alive timer counts from its last request: stop it; this
        # connection's own (below) counts from now.
        self.keep_alive(True)
        self._idle_until = self._loop.time() + self._idle_timeout
        if self._idle_timer is None:
            self._idle_timer = self._loop.call_at(self._idle_until, self._idle_expired)
        return True

    def _idle_expired(self) -> None:
        self._idle_timer = None
        if self._request_count != self._idle_count:
            return  # a request went aiohttp's way since: its keep-alive timer governs
        if self._loop.time() < self._idle_until:
            self._idle_timer = self._loop.call_at(self._idle_until, self._idle_expired)
        elif self._waiter is not None and not self._waiter.done() and not self._messages:
            self.force_close()  # idle for the keep-alive timeout

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
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
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
        if self._messages:
            # Requests pipelined before the half-close are answered too, in order:
            # close() now would end the connection after the first (aiohttp's way).
            self._close_when_answered = True
        else:
            self.close()
        return True

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        result = await super().finish_response(request, resp, start_time)
        if self._close_when_answered and not self._messages:
            self.close()  # the client half-closed and every request it sent is answered
        return result

    def data_received(self, data: bytes) -> None:
        upgraded = self._upgraded
        waiting = not upgraded and self._waiter is not None and not self._waiter.done()
        before = self._request_count
        kept = self._head_bytes  # the start of the head being received, from earlier reads
        super().data_received(data)
        if self._request_count != before:
            self._disarm_head_deadline()
            if self._messages and any(
                isinstance(message, _ErrInfo) for message, _ in self._messages
            ):
                self._refused_head = (bytes(kept) + data)[:_HEAD_KEEP]  # for handle_error()
            kept.clear()
            return
        # No request head completed: these bytes start (or continue) one, which must
        # arrive within timeouts.client_header. (A head read whole arms no timer.)
        if not upgraded and len(kept) < _HEAD_KEEP:
            kept += data[: _HEAD_KEEP - len(kept)]
        if data and waiting:
            self._arm_head_deadline()

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
        return refusal_answer(verdict, status, MESSAGES.get(status, "refused"), head_only=head_only)

    def _refused_verdict(self, head: bytes, peer: str | None) -> Verdict | None:
        refused = parse_refused_head(head)
        if refused is None:
            return None
        return self._decide_refused(refused.method, refused.raw_path, refused.headers, peer)


def guard_http_version(handler: Handler) -> Handler:
    """Refuse what the parser lets through but the edge never forwards (see
    :func:`proxy.refusals.head_refusal`) with 400 and a close."""

    async def guarded(request: web.BaseRequest) -> web.StreamResponse:
        refusal = head_refusal(
            request.version,
            request.headers,
            request.raw_headers,
            # Only a connection that ever sent a byte past ASCII needs its headers read.
            getattr(request.protocol, "saw_non_ascii", True),
        )
        if refusal is not None:
            log.warning("refused a request from %s with 400: %s", request.remote, refusal)
            return refusal_answer(None, 400, MESSAGES[400], head_only=request.method == "HEAD")
        return await handler(request)

    return guarded


class EdgeHTTPServer(web.Server):
    """aiohttp's low-level server making :class:`EdgeRequestHandler` connections."""

    def __init__(
        self,
        handler: Handler,
        *,
        decide_refused: RefusedDecider,
        answer_early: EarlyAnswerer | None = None,
        client_header_timeout: float,
        client_send_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(guard_http_version(handler), **kwargs)
        self._decide_refused = decide_refused
        self._answer_early = answer_early
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
            answer_early=self._answer_early,
            client_header_timeout=self._client_header_timeout,
            client_send_timeout=self._client_send_timeout,
            **self._kwargs,
        )
