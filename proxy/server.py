"""The aiohttp edge: the only place requests meet the CORS engine and the upstream.

Every request (and every request head the parser refused, see :mod:`proxy.protocol`)
is decided by :meth:`EdgeServer.decide` through the verdict cache of the snapshot in
force. Edge decisions are answered by :mod:`proxy.edge_answers`; the rest go to the
upstream through :mod:`proxy.forward` and come back stamped with the verdict's
headers. Observers get a :class:`~proxy.records.RequestRecord` for each request.

Public aiohttp API only (``web.BaseRequest``, ``web.StreamResponse``); what needs
more (the ``100 Continue`` line, the connection handler) is in :mod:`proxy.protocol`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

from aiohttp import HttpVersion11, hdrs, web
from aiohttp.http_parser import RawRequestMessage
from multidict import CIMultiDict, istr

from .bodies import limited_body, refused_body
from .cors import Verdict
from .edge_answers import edge_answer, error_answer, prepared_answer
from .forward import ForwardFailure, Upstream, UpstreamResponse, read_small_body
from .headers import RequestHeaders, is_trusted, joined, response_headers, upstream_request_headers
from .policy import Config
from .protocol import EdgeHTTPServer, peer_address, send_continue
from .records import Observer, PolicyHolder, RequestRecord, Snapshot
from .relayed import RelayedStreamResponse, relay_stream, small_answer
from .sameorigin import client_scheme, reported_schemes
from .shadow import ShadowLog, judge
from .websocket import (
    Relays,
    is_websocket_upgrade,
    may_carry_credentials,
    relay_websocket,
    strip_credentials,
)

log = logging.getLogger("cors_edge")

LINGERING_TIME = 2.0  # seconds; see make_server

SMALL_BODY = 64 * 1024  # bodies up to this size are relayed in one piece
# Header names as multidict's istr, looked up without case-folding them each time.
_REQUEST_PRIVATE_NETWORK = istr("Access-Control-Request-Private-Network")


class EdgeServer:
    """Answers preflights, blocks refused cross-origin requests, forwards the rest."""

    def __init__(
        self,
        holder: PolicyHolder,
        upstream: Upstream,
        observers: list[Observer] | None = None,
    ) -> None:
        self.holder = holder
        self.upstream = upstream
        self.observers: list[Observer] = observers or []
        self.in_flight = 0
        # Counted against limits.max_websockets; shutdown closes them with 1001.
        self.websockets = Relays(holder.current.limits.max_websockets)
        self.shadow_log = ShadowLog()

    def make_server(self) -> EdgeHTTPServer:
        config = self.holder.current
        limits, timeouts = config.limits, config.timeouts
        return EdgeHTTPServer(
            self.handle,
            decide_refused=self.decide_refused,
            answer_early=self.answer_early,
            client_header_timeout=timeouts.client_header,
            client_send_timeout=timeouts.client_send,
            max_line_size=limits.max_header_bytes,
            max_field_size=limits.max_header_bytes,
            max_headers=limits.max_headers,
            keepalive_timeout=timeouts.keepalive,
            # Request bodies go upstream byte for byte, Content-Encoding and all: inflating
            # them here would forward a body that no longer matches its headers.
            auto_decompress=False,
            # A body left unread after an edge answer (a refused upload, an Expect:
            # 100-continue that gets no 100) is discarded for at most this long before
            # the connection closes (aiohttp's default: 10 s, which also held up drains).
            lingering_time=LINGERING_TIME,
            access_log=None,
        )

    # --- deciding ---------------------------------------------------------------

    @staticmethod
    def decide(
        snapshot: Snapshot,
        method: str,
        raw_path: str,
        headers: RequestHeaders,
        trusted: bool,
        *,
        preflight: bool = True,
    ) -> Verdict:
        """The one way into the engine: the snapshot's verdict cache, the scheme the
        browser addressed (``public_scheme``, a trusted ``X-Forwarded-Proto``, or None when
        in doubt: see :mod:`proxy.sameorigin`), its Host and Origin headers."""
        get = headers.get
        return snapshot.verdicts.decide(
            method,
            raw_path,
            headers.getall(hdrs.ORIGIN, ()),
            joined(headers, hdrs.ACCESS_CONTROL_REQUEST_METHOD) if preflight else None,
            joined(headers, hdrs.ACCESS_CONTROL_REQUEST_HEADERS) if preflight else None,
            get(_REQUEST_PRIVATE_NETWORK) if preflight else None,
            client_scheme(snapshot.config.public_scheme, reported_schemes(headers), trusted),
            get(hdrs.HOST),
        )

    def decide_refused(
        self, method: str, raw_path: str, headers: RequestHeaders, peer: str | None
    ) -> Verdict:
        """The verdict for a request head the parser refused (from its complete header
        lines). Never a preflight's: a refused preflight cannot pass a browser's check,
        so it is answered as the request itself would be."""
        snapshot = self.holder.snapshot
        trusted = is_trusted(peer, snapshot.config.trust_forwarded_from)
        return self.decide(snapshot, method, raw_path, headers, trusted, preflight=False)

    # --- handling -------------------------------------------------------------

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        snapshot = self.holder.snapshot
        self.in_flight += 1
        record = RequestRecord(
            method=request.method,
            path=request.raw_path,
            route=None,
            origin=None,
            decision="",
            status=0,
            bytes_sent=0,
            upstream_ms=None,
            total_ms=0.0,
            generation=snapshot.generation,
        )
        try:
            peer = _peer(request)
            trusted = is_trusted(peer, snapshot.config.trust_forwarded_from)
            raw_target = request.raw_path
            verdict = self.decide(
                snapshot, request.method, raw_target.split("?", 1)[0], request.headers, trusted
            )
            record.decision = verdict.decision.value
            record.route = verdict.route.name if verdict.route else None
            record.origin = verdict.origin or request.headers.get("Origin")
            response: web.StreamResponse
            shadow = verdict.route is not None and verdict.route.shadow
            if shadow:
                record.decision = f"shadow:{record.decision}"
            if verdict.answered_at_edge and not shadow:
                response = edge_answer(verdict, request)
            else:
                response = await self._forward(
                    request, snapshot, verdict, peer, trusted, record, shadow=shadow
                )
            record.status = response.status
            return response
        finally:
            self.in_flight -= 1
            record.total_ms = (time.perf_counter() - started) * 1000
            self._observe(record)

    def answer_early(self, message: RawRequestMessage, peer: str | None) -> bytes | None:
        """The whole answer to a parsed request the edge answers itself, or ``None`` to
        have it handled as any other (:meth:`handle`). Called by :mod:`proxy.protocol` for
        plain HTTP/1.1 keep-alive requests without a body, before aiohttp builds a
        request object: the same decision and record as :meth:`handle` would make."""
        started = time.perf_counter()
        snapshot = self.holder.snapshot
        headers = message.headers
        trusted = is_trusted(peer, snapshot.config.trust_forwarded_from)
        method, raw_target = message.method, message.path
        verdict = self.decide(snapshot, method, raw_target.split("?", 1)[0], headers, trusted)
        answer = prepared_answer(verdict, head_only=method == "HEAD")
        if answer is None:
            return None
        record = RequestRecord(
            method=method,
            path=raw_target,
            route=answer.route,
            origin=verdict.origin or headers.get("Origin"),
            decision=answer.decision,
            status=answer.status,
            bytes_sent=0,
            upstream_ms=None,
            total_ms=(time.perf_counter() - started) * 1000,
            generation=snapshot.generation,
        )
        self._observe(record)
        return answer.data()

    def _observe(self, record: RequestRecord) -> None:
        for observer in self.observers:
            try:
                observer(record)
            except Exception:  # an observer must never break a response
                log.exception("request observer failed")

    async def _forward(
        self,
        request: web.BaseRequest,
        snapshot: Snapshot,
        verdict: Verdict,
        peer: str | None,
        trusted: bool,
        record: RequestRecord,
        *,
        shadow: bool = False,
    ) -> web.StreamResponse:
        config = snapshot.config
        max_body = config.limits.max_body_bytes
        length = request.content_length
        refusal = refused_body(request, verdict, max_body)
        if refusal is not None:
            return refusal
        if request.headers.get("Expect", "").lower() == "100-continue":
            # Only now that the request is permitted may the client send its body.
            await send_continue(request)
        has_body = request.body_exists
        # The scheme browsers use when the operator stated it, else the listener's own.
        scheme = config.public_scheme or request.scheme
        out_headers = upstream_request_headers(
            request.headers, peer=peer, scheme=scheme, trusted_peer=trusted
        )
        if "Host" not in out_headers:
            # HTTP/1.0 without Host: the upstream gets the address the client
            # connected to (the listener's), never the upstream's own address.
            out_headers["Host"] = _listener_host(request)
        raw_target = request.raw_path
        if is_websocket_upgrade(request):
            return await self._websocket(
                request, config, verdict, trusted, out_headers, record, shadow=shadow
            )
        try:
            body: bytes | AsyncIterator[bytes] | None = None
            if has_body:
                timeouts = config.timeouts
                if length is not None and length <= SMALL_BODY:
                    # A small body is read whole and goes upstream in one write with the head.
                    body = await read_small_body(request.content, length, timeouts)
                else:
                    body = limited_body(request.content, max_body, timeouts)
            upstream_started = time.perf_counter()
            upstream_response = await self.upstream.send(
                request.method, raw_target, out_headers, body
            )
        except ForwardFailure as failure:
            return _failed(verdict, failure, record)
        record.upstream_ms = (time.perf_counter() - upstream_started) * 1000
        try:
            return await self._relay(request, upstream_response, verdict, record, shadow=shadow)
        finally:
            upstream_response.release()

    async def _websocket(
        self,
        request: web.BaseRequest,
        config: Config,
        verdict: Verdict,
        trusted: bool,
        out_headers: CIMultiDict[str],
        record: RequestRecord,
        *,
        shadow: bool,
    ) -> web.StreamResponse:
        browser_scheme = client_scheme(
            config.public_scheme, reported_schemes(request.headers), trusted
        )
        # Shadow mode changes nothing the app sees; enforcing routes strip credentials.
        if not shadow and not may_carry_credentials(verdict, request.headers, browser_scheme):
            strip_credentials(out_headers)
        return await relay_websocket(
            request, self.upstream, request.raw_path, out_headers, verdict, record, self.websockets
        )

    async def _relay(
        self,
        request: web.BaseRequest,
        upstream_response: UpstreamResponse,
        verdict: Verdict,
        record: RequestRecord,
        *,
        shadow: bool = False,
    ) -> web.StreamResponse:
        headers: list[tuple[str, str]]
        if shadow:
            # The app's own answer, its CORS headers and Vary as it sent them; cors-edge
            # only judges it next to its own verdict.
            headers = response_headers(upstream_response.headers, keep_cors=True)
            self._judge_shadow(request, verdict, upstream_response.status, headers, record)
            headers.extend(verdict.extra)  # serve --debug's header (proxy/debug.py), if on
        else:
            headers = []
            vary_values: list[str] = []
            for name, value in response_headers(upstream_response.headers):
                if name.lower() == "vary":
                    vary_values.append(value)
                else:
                    headers.append((name, value))
            headers.extend(verdict.answer_headers(vary_values))
        length = upstream_response.content_length
        status, reason = upstream_response.status, upstream_response.reason
        if length is not None and length <= SMALL_BODY and request.method != "HEAD":
            # Small bodies are read once and sent with the head in one write.
            try:
                body = await upstream_response.read()
            except ForwardFailure as failure:
                return _failed(verdict, failure, record)
            record.bytes_sent = len(body)
            return small_answer(request, status, reason, headers, body)
        out = CIMultiDict(headers)
        # Of unknown length, the body goes chunked to HTTP/1.1 clients and
        # close-delimited to HTTP/1.0 ones (no chunked coding there), aiohttp's
        # choice when no Content-Length is set; the close must then really come,
        # whatever keep-alive the HTTP/1.0 client asked for.
        response: web.StreamResponse = RelayedStreamResponse(
            status=status, reason=reason, headers=out
        )
        if (
            request.version < HttpVersion11
            and "Content-Length" not in out
            and request.method != "HEAD"
            and status not in (204, 304)
        ):
            response.force_close()
        send_timeout = self.holder.current.timeouts.client_send
        return await relay_stream(request, upstream_response, response, record, send_timeout)

    def _judge_shadow(
        self,
        request: web.BaseRequest,
        verdict: Verdict,
        status: int,
        headers: list[tuple[str, str]],
        record: RequestRecord,
    ) -> None:
        get = request.headers.get
        origin = get("Origin")
        judgement = judge(
            verdict,
            origin=origin,
            request_method=get("Access-Control-Request-Method"),
            request_headers=get("Access-Control-Request-Headers"),
            credentials="Cookie" in request.headers,
            status=status,
            upstream_headers=headers,
        )
        if judgement is not None and judgement.disagrees:
            record.shadow = (judgement.ours, judgement.upstream)
            route = record.route or "none"
            self.shadow_log(route, request.method, request.raw_path, origin or "", judgement)


def _failed(verdict: Verdict, failure: ForwardFailure, record: RequestRecord) -> web.Response:
    """The answer for a forwarded request that failed before its response began."""
    record.error = failure.error
    response = error_answer(verdict, failure.status, failure.message)
    if failure.close:
        response.force_close()
    return response


def _listener_host(request: web.BaseRequest) -> str:
    """``host:port`` of the listening socket the request came in on ("" if unknown)."""
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if not isinstance(sockname, tuple) or len(sockname) < 2:
        return ""
    host = str(sockname[0])
    return f"[{host}]:{sockname[1]}" if ":" in host else f"{host}:{sockname[1]}"


def _peer(request: web.BaseRequest) -> str | None:
    transport = request.transport
    return peer_address(transport) if transport is not None else None
