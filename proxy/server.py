"""The aiohttp edge: the only place requests meet the CORS engine and the upstream."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from .cors import Decision, Verdict, VerdictCache
from .edge_answers import SERVER, edge_answer
from .forward import (
    BodyTooLarge,
    ClientBodyIncomplete,
    ClientBodyTimeout,
    Upstream,
    client_body_fault,
    is_trusted,
    limited_body,
    merge_vary,
    read_small_body,
    response_headers,
    upstream_request_headers,
)
from .origins import parse_origin
from .policy import Config
from .protocol import EdgeHTTPServer
from .websocket import (
    Relays,
    is_websocket_upgrade,
    may_carry_credentials,
    relay_websocket,
    strip_credentials,
)

log = logging.getLogger("cors_edge")

SMALL_BODY = 64 * 1024  # upstream bodies up to this size are relayed in one piece

# Decisions whose requests go to the upstream and get the verdict's headers stamped.
_STAMPED = frozenset({Decision.ALLOWED, Decision.SAME_ORIGIN, Decision.NO_ORIGIN})


@dataclass(slots=True)
class RequestRecord:
    """What happened to one request; handed to observers (access log, metrics)."""

    method: str
    path: str
    route: str | None
    origin: str | None
    decision: str
    status: int
    bytes_sent: int
    upstream_ms: float | None
    total_ms: float
    error: str | None = None
    generation: int = 0


Observer = Callable[[RequestRecord], None]


class PolicyHolder:
    """The current policy set, swapped atomically; each request reads it once."""

    def __init__(self, policies: Config) -> None:
        self.current = policies
        self.generation = 1

    def swap(self, policies: Config) -> int:
        self.current = policies
        self.generation += 1
        return self.generation


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
        self.websockets = Relays()
        self._verdicts = VerdictCache(holder.current)

    def make_server(self, **kwargs: Any) -> web.Server:
        limits = self.holder.current.limits
        timeouts = self.holder.current.timeouts
        return EdgeHTTPServer(
            self.handle,
            policies=lambda: self.holder.current,
            client_header_timeout=timeouts.client_header,
            max_line_size=limits.max_header_bytes,
            max_field_size=limits.max_header_bytes,
            max_headers=limits.max_headers,
            keepalive_timeout=timeouts.keepalive,
            # Request bodies go upstream byte for byte, Content-Encoding and all: inflating
            # them here would forward a body that no longer matches its headers.
            auto_decompress=False,
            access_log=None,
            **kwargs,
        )

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        policies = self.holder.current
        generation = self.holder.generation
        headers = request.headers
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
            generation=generation,
        )
        try:
            peer = _peer(request)
            trusted = is_trusted(peer, policies.trust_forwarded_from)
            scheme = _client_scheme(headers, trusted)
            host = headers.get("Host")
            raw_target = request.raw_path
            raw_path = raw_target.split("?", 1)[0]
            verdicts = self._verdicts
            if verdicts.policies is not policies:
                verdicts = self._verdicts = VerdictCache(policies)
            verdict = verdicts.decide(
                request.method,
                raw_path,
                headers.getall("Origin", ()),
                headers.get("Access-Control-Request-Method"),
                headers.get("Access-Control-Request-Headers"),
                headers.get("Access-Control-Request-Private-Network"),
                scheme,
                host,
            )
            record.decision = verdict.decision.value
            record.route = verdict.route.name if verdict.route else None
            record.origin = verdict.origin or (
                headers.get("Origin") if "Origin" in headers else None
            )
            response: web.StreamResponse
            if verdict.answered_at_edge:
                response = edge_answer(verdict, request)
            else:
                response = await self._forward(
                    request, policies, verdict, raw_target, peer, request.scheme, trusted, record
                )
            record.status = response.status
            return response
        finally:
            self.in_flight -= 1
            record.total_ms = (time.perf_counter() - started) * 1000
            for observer in self.observers:
                try:
                    observer(record)
                except Exception:  # an observer must never break a response
                    log.exception("request observer failed")

    async def _forward(
        self,
        request: web.BaseRequest,
        policies: Config,
        verdict: Verdict,
        raw_target: str,
        peer: str | None,
        scheme: str,
        trusted: bool,
        record: RequestRecord,
    ) -> web.StreamResponse:
        limits = policies.limits
        if (
            limits.max_body_bytes is not None
            and request.content_length is not None
            and request.content_length > limits.max_body_bytes
        ):
            return _error_answer(verdict, 413, "request body too large")
        if request.headers.get("Expect", "").lower() == "100-continue":
            # Only now that the request is permitted may the client send its body.
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        has_body = request.body_exists
        out_headers = upstream_request_headers(
            request.headers, peer=peer, scheme=scheme, trusted_peer=trusted
        )
        if is_websocket_upgrade(request):
            _websocket_credentials(request, verdict, trusted, out_headers)
            return await relay_websocket(
                request, self.upstream, raw_target, out_headers, verdict, record, self.websockets
            )
        body: bytes | AsyncIterator[bytes] | None = None
        if has_body:
            length = request.content_length
            if length is not None and length <= SMALL_BODY:
                # A small body is read whole and goes upstream in one write with the head.
                try:
                    body = await read_small_body(
                        request.content, length, policies.timeouts.client_body
                    )
                except ClientBodyTimeout as error:
                    return _client_body_answer(verdict, error, record)
                except (asyncio.IncompleteReadError, aiohttp.ClientPayloadError, ConnectionError):
                    # The client stopped short, or hung up mid-body.
                    record.error = "client_body_incomplete"
                    response = _error_answer(verdict, 400, "request body incomplete")
                    response.force_close()
                    return response
            else:
                body = limited_body(
                    request.content, limits.max_body_bytes, policies.timeouts.client_body
                )
        upstream_started = time.perf_counter()
        try:
            upstream_response = await self.upstream.session.request(
                request.method,
                self.upstream.url(raw_target),
                headers=out_headers,
                data=body,
                allow_redirects=False,
                compress=None,
                chunked=None,
            )
        except (BodyTooLarge, ClientBodyTimeout, ClientBodyIncomplete) as error:
            return _client_body_answer(verdict, error, record)
        except aiohttp.ClientPayloadError as error:
            if client_body_fault(error) is not None:
                return _client_body_answer(verdict, error, record)
            record.error = "payload"
            return _error_answer(verdict, 502, "upstream failed while receiving the request")
        except (TimeoutError, aiohttp.ServerTimeoutError):
            record.error = "timeout"
            return _error_answer(verdict, 504, "upstream timed out")
        except (aiohttp.ClientError, OSError) as error:
            if client_body_fault(error) is not None:  # the client's body, not the upstream
                return _client_body_answer(verdict, error, record)
            record.error = _error_kind(error)
            # Explained on stderr, rate-limited, by accesslog.UpstreamErrorLog.
            log.debug("upstream unavailable: %s", error)
            return _error_answer(verdict, 502, "upstream unavailable")
        record.upstream_ms = (time.perf_counter() - upstream_started) * 1000
        try:
            return await self._relay(request, upstream_response, verdict, record)
        finally:
            upstream_response.release()

    async def _relay(
        self,
        request: web.BaseRequest,
        upstream_response: aiohttp.ClientResponse,
        verdict: Verdict,
        record: RequestRecord,
    ) -> web.StreamResponse:
        out: CIMultiDict[str] = CIMultiDict()
        vary_values: list[str] = []
        for name, value in response_headers(upstream_response.headers):
            if name.lower() == "vary":
                vary_values.append(value)
            else:
                out.add(name, value)
        if verdict.decision in _STAMPED:
            out.extend(verdict.headers)
        if vary_values or verdict.vary:
            merged = merge_vary(vary_values, verdict.vary or "")
            if merged:
                out["Vary"] = merged
        length = upstream_response.content_length
        if (
            length is not None
            and length <= SMALL_BODY
            and request.method != "HEAD"
            and "Content-Type" in out
        ):
            # Small bodies are read once and sent with the head in one write.
            try:
                body = await upstream_response.read()
            except (TimeoutError, aiohttp.ClientError, OSError) as error:
                record.error = _error_kind(error)
                status = 504 if isinstance(error, TimeoutError) else 502
                return _error_answer(verdict, status, "upstream failed mid-response")
            record.bytes_sent = len(body)
            return web.Response(
                status=upstream_response.status,
                reason=upstream_response.reason,
                headers=out,
                body=body,
            )
        response = web.StreamResponse(
            status=upstream_response.status, reason=upstream_response.reason, headers=out
        )
        if "Content-Length" not in out and upstream_response.status not in (204, 304):
            response.enable_chunked_encoding()
        content = upstream_response.content
        try:
            await response.prepare(request)
            while True:
                try:
                    # readchunk() hands over each received piece as is; readany() would
                    # first join everything buffered into a new bytes object (a copy).
                    chunk, _ = await content.readchunk()
                except (TimeoutError, aiohttp.ClientError, OSError) as error:
                    # Headers are gone already; abort so the client sees a broken
                    # response, never a truncated "success".
                    record.error = "aborted:" + _error_kind(error)
                    _abort(request)
                    return response
                if not chunk:
                    # (b"", True) marks a chunk boundary, but aiohttp's shared empty
                    # payload (HEAD, 204, 304) answers it for ever: only EOF ends this.
                    if content.at_eof():
                        break
                    continue
                await response.write(chunk)
                record.bytes_sent += len(chunk)
            await response.write_eof()
        except OSError:
            # Only writes to the client are left in here: the user went away (closed
            # the tab, cancelled the download). Not an upstream failure.
            record.error = "client_aborted"
            _abort(request)
        return response


def _abort(request: web.BaseRequest) -> None:
    if request.transport is not None:
        request.transport.abort()


def _error_answer(verdict: Verdict, status: int, message: str) -> web.Response:
    """An error cors-edge makes itself, readable by a page the route allows."""
    headers: list[tuple[str, str]] = []
    if verdict.decision in _STAMPED:
        headers.extend(verdict.headers)
    if verdict.vary:
        headers.append(("Vary", verdict.vary))
    headers.append(("Content-Type", "application/json"))
    headers.append(("Server", SERVER))
    return web.Response(
        status=status, text=json.dumps({"error": message, "status": status}), headers=headers
    )


def _client_body_answer(
    verdict: Verdict, error: BaseException, record: RequestRecord
) -> web.Response:
    """413 for a body past ``max_body_bytes``, 408 for a client silent past ``client_body``,
    400 for a body the client broke off."""
    fault = client_body_fault(error)
    if isinstance(fault, ClientBodyIncomplete):
        record.error = "client_body_incomplete"
        response = _error_answer(verdict, 400, "request body incomplete")
        response.force_close()
        return response
    if isinstance(fault, ClientBodyTimeout):
        record.error = "client_body_timeout"
        response = _error_answer(verdict, 408, "request body timed out")
        response.force_close()  # the rest of the body may still be on its way
        return response
    record.error = "body_too_large"
    return _error_answer(verdict, 413, "request body too large")


def _websocket_credentials(
    request: web.BaseRequest, verdict: Verdict, trusted: bool, out_headers: CIMultiDict[str]
) -> None:
    """Drop cookies and HTTP auth from an upgrade the route does not grant them to."""
    headers = request.headers
    host = headers.get("Host")
    self_origin = parse_origin(f"{_client_scheme(headers, trusted)}://{host}") if host else None
    if not may_carry_credentials(verdict, headers.getall("Origin", []), self_origin):
        strip_credentials(out_headers)


def _peer(request: web.BaseRequest) -> str | None:
    transport = request.transport
    if transport is None:
        return None
    peername = transport.get_extra_info("peername")
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return None


def _client_scheme(headers: Any, trusted: bool) -> str:
    if trusted:
        forwarded = headers.get("X-Forwarded-Proto")
        if forwarded:
            return str(forwarded.split(",")[0].strip().lower())
    return "http"


def _error_kind(error: BaseException) -> str:
    if isinstance(error, aiohttp.ClientConnectorError):
        return "connect"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "disconnected"
    if isinstance(error, asyncio.TimeoutError):
        return "timeout"
    if isinstance(error, aiohttp.ClientPayloadError):
        return "payload"
    return type(error).__name__
