"""The upstream client: the only module that talks to the upstream.

:meth:`Upstream.send` sends one request and returns an :class:`UpstreamResponse`
(status, headers, body read whole or piece by piece); :meth:`Upstream.connect_websocket`
opens a WebSocket. Whatever goes wrong on the way (the upstream, or the client's body
being streamed to it) comes out as one typed failure, :class:`ForwardFailure`, which
says whose fault it was and what the client is answered. Headers are prepared by
:mod:`proxy.headers`; this module only moves them.

Plain HTTP goes over the lean client (:mod:`proxy.upstream_pool` on
:mod:`proxy.upstream_conn`: keep-alive pool, httptools parser), whose typed failures
(:mod:`proxy.upstream_errors`) map one to one onto :class:`ForwardFailure`. WebSocket
upgrades keep aiohttp's client (its public API only: a WebSocket connects once and
stays, so the per-connect savings of a custom connector would buy nothing); nothing of
it shows through this interface but ``aiohttp.ClientWebSocketResponse``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .bodies import (
    BodyTooLarge,
    ClientBodyFault,
    ClientBodyIncomplete,
    ClientBodyTimeout,
    read_whole_body,
)
from .policy import Limits, Timeouts
from .records import ErrorKind, RequestError
from .upstream_errors import (
    ConnectFailed,
    Disconnected,
    PoolTimeout,
    ProtocolFault,
    UpstreamError,
)
from .upstream_pool import UpstreamPool
from .upstream_pool import UpstreamResponse as PoolResponse

log = logging.getLogger("cors_edge")

# What can go wrong with the client's body while the upstream answers (isinstance form).
_CLIENT_BODY_FAULTS = (BodyTooLarge, ClientBodyTimeout, ClientBodyIncomplete)

STREAM_CHUNK = 256 * 1024
Body = bytes | AsyncIterator[bytes] | None


class ForwardFailure(Exception):
    """A forwarded request failed: why (and whose fault), and what the client gets."""

    def __init__(self, error: RequestError, status: int, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.status = status
        self.message = message

    @property
    def close(self) -> bool:
        """Close the client connection after the answer: the rest of its body may still
        be on its way (or never come)."""
        return self.error.kind in (ErrorKind.CLIENT_BODY_TIMEOUT, ErrorKind.CLIENT_BODY_INCOMPLETE)


@dataclass(frozen=True, slots=True)
class UpstreamAddress:
    """``http://host:port`` or ``unix:/path.sock`` parsed once."""

    base: str  # scheme://authority the request URL is built on
    unix_path: str | None

    @classmethod
    def parse(cls, text: str) -> UpstreamAddress:
        if text.startswith("unix:"):
            # The authority is irrelevant over a UNIX socket; the Host header is the client's.
            return cls("http://upstream", text[len("unix:") :])
        return cls(text.rstrip("/"), None)


async def read_small_body(content: aiohttp.StreamReader, length: int, timeouts: Timeouts) -> bytes:
    """Read a small body of known ``length`` whole, by :func:`~proxy.bodies.body_deadline`.
    Raises the client's :class:`ForwardFailure` (408, 400)."""
    try:
        return await read_whole_body(content, length, timeouts)
    except (ClientBodyTimeout, ClientBodyIncomplete) as fault:
        raise _client_body_failure(fault) from fault


def _upstream_error(error: BaseException, aborted: bool = False) -> RequestError:
    """The kind of an upstream failure, from aiohttp's (or the OS's) exception."""
    if isinstance(error, aiohttp.ClientConnectorError):
        kind = ErrorKind.CONNECT
    elif isinstance(error, aiohttp.ServerDisconnectedError):
        kind = ErrorKind.DISCONNECTED
    elif isinstance(error, asyncio.TimeoutError):
        kind = ErrorKind.TIMEOUT
    elif isinstance(error, aiohttp.ClientPayloadError):
        kind = ErrorKind.PAYLOAD
    else:
        return RequestError(ErrorKind.UPSTREAM, aborted, type(error).__name__)
    return RequestError(kind, aborted)


def _client_body_failure(fault: ClientBodyFault) -> ForwardFailure:
    """413 for a body past ``max_body_bytes``, 408 for a client silent past ``client_body``,
    400 for a body the client broke off."""
    if isinstance(fault, ClientBodyIncomplete):
        return ForwardFailure(
            RequestError(ErrorKind.CLIENT_BODY_INCOMPLETE), 400, "request body incomplete"
        )
    if isinstance(fault, ClientBodyTimeout):
        return ForwardFailure(
            RequestError(ErrorKind.CLIENT_BODY_TIMEOUT), 408, "request body timed out"
        )
    return ForwardFailure(RequestError(ErrorKind.BODY_TOO_LARGE), 413, "request body too large")


_KINDS: dict[type[UpstreamError], ErrorKind] = {
    ConnectFailed: ErrorKind.CONNECT,
    Disconnected: ErrorKind.DISCONNECTED,
    PoolTimeout: ErrorKind.POOL_TIMEOUT,
    ProtocolFault: ErrorKind.BAD_RESPONSE,
}


def _lean_error(error: UpstreamError, aborted: bool = False) -> RequestError:
    """The kind of a lean-client failure; an invalid response keeps its reason."""
    if isinstance(error, TimeoutError) and not isinstance(error, PoolTimeout):
        return RequestError(ErrorKind.TIMEOUT, aborted)
    for cls, kind in _KINDS.items():
        if isinstance(error, cls):
            detail = str(error) if kind is ErrorKind.BAD_RESPONSE else None
            return RequestError(kind, aborted, detail)
    return RequestError(ErrorKind.PAYLOAD, aborted)  # a body cut short


def _handshake_failure(status: int) -> ForwardFailure:
    """The upstream did not switch protocols. Its deliberate refusals (4xx: not found,
    not authorised) are relayed; anything else (a 200, a redirect, a 101 with a wrong
    ``Sec-WebSocket-Accept``, a 5xx) is not a WebSocket: 502, never the upstream's
    status, which would tell the client a failed upgrade succeeded."""
    if 400 <= status < 500:
        return ForwardFailure(
            RequestError(ErrorKind.UPSTREAM, detail="refused"),
            status,
            "upstream refused the WebSocket",
        )
    return ForwardFailure(
        RequestError(ErrorKind.WEBSOCKET_HANDSHAKE),
        502,
        f"upstream answered the WebSocket upgrade with {status}",
    )


def _sending_failure(error: BaseException) -> ForwardFailure:
    """What a failure to send a request (and get its response head) means."""
    if isinstance(error, ClientBodyFault):  # the client's body
        return _client_body_failure(error)
    if isinstance(error, UpstreamError):
        log.debug("upstream unavailable: %s", error)  # explained by accesslog.UpstreamErrorLog
        return ForwardFailure(_lean_error(error), error.status, error.answer)
    # Reading the client's body failed: it hung up or stopped short mid-body.
    return ForwardFailure(
        RequestError(ErrorKind.CLIENT_BODY_INCOMPLETE), 400, "request body incomplete"
    )


class UpstreamResponse:
    """The upstream's answer: status and headers at once, the body when asked for."""

    __slots__ = ("_response", "content_length", "headers", "reason", "status")

    def __init__(self, response: PoolResponse) -> None:
        self._response = response
        self.status = response.status
        self.reason = response.reason
        self.headers: CIMultiDictProxy[str] = response.headers
        self.content_length = response.content_length

    async def read(self) -> bytes:
        """The whole body (for small ones, sent on with the head in one write)."""
        try:
            return await self._response.read()
        except _CLIENT_BODY_FAULTS as fault:  # the upstream answered before the body was in
            raise _client_body_failure(fault) from fault
        except UpstreamError as error:
            raise ForwardFailure(
                _lean_error(error), error.status, "upstream failed mid-response"
            ) from error

    async def next_chunk(self) -> bytes:
        """The next piece of the body as received; ``b""`` once it is complete. A
        failure here is an aborted response (its head is already on its way)."""
        try:
            return await self._response.read_chunk()
        except _CLIENT_BODY_FAULTS as fault:  # an early answer, then the client's body failed
            failure = _client_body_failure(fault)
            error = RequestError(failure.error.kind, aborted=True)
            raise ForwardFailure(error, failure.status, failure.message) from fault
        except UpstreamError as error:
            raise ForwardFailure(
                _lean_error(error, aborted=True), 502, "upstream failed mid-response"
            ) from error

    def release(self) -> None:
        """Give the connection back to the pool (or close it if the body is unread)."""
        self._response.release()


class Upstream:
    """The pooled client for the configured upstream."""

    def __init__(self, address: str, timeouts: Timeouts, limits: Limits) -> None:
        self.address = UpstreamAddress.parse(address)
        self.timeouts = timeouts
        self.limits = limits
        self._text = address
        self._pool: UpstreamPool | None = None
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("Upstream.start() was not awaited")
        return self._session

    async def send(
        self, method: str, raw_target: str, headers: CIMultiDict[str], body: Body
    ) -> UpstreamResponse:
        """Send one request; its response once the head has arrived. Raises
        :class:`ForwardFailure`. The caller releases the response."""
        if self._pool is None:
            raise RuntimeError("Upstream.start() was not awaited")
        try:
            response = await self._pool.request(method, raw_target, headers.items(), body)
        except (
            UpstreamError,
            BodyTooLarge,
            ClientBodyTimeout,
            ClientBodyIncomplete,
            aiohttp.ClientPayloadError,
            asyncio.IncompleteReadError,
            ConnectionError,
        ) as error:
            raise _sending_failure(error) from error
        return UpstreamResponse(response)

    async def connect_websocket(
        self, raw_target: str, headers: CIMultiDict[str], protocols: list[str]
    ) -> aiohttp.ClientWebSocketResponse:
        """Open a WebSocket upstream (no autoping: a transparent relay). Raises
        :class:`ForwardFailure` with the status the client gets."""
        try:
            return await self._client().ws_connect(
                self.url(raw_target),
                headers=headers,
                protocols=protocols,
                autoping=False,
                # aiohttp stops reading (and inflating) a message at this size: a small
                # compressed frame cannot blow up in memory. The exact bound,
                # limits.max_websocket_message, is the relay's (proxy.websocket).
                max_msg_size=self.limits.max_websocket_message + 1,
            )
        except aiohttp.WSServerHandshakeError as error:
            raise _handshake_failure(error.status) from error
        except (aiohttp.ClientError, OSError) as error:
            raise ForwardFailure(_upstream_error(error), 502, "upstream unavailable") from error

    async def start(self) -> None:
        self._pool = UpstreamPool.for_config(self._text, self.timeouts, self.limits)
        # For WebSockets only, with no connector limit: they never take the HTTP
        # pool's connections, and the relay counts them (limits.max_websockets).
        connector: aiohttp.BaseConnector
        if self.address.unix_path is not None:
            connector = aiohttp.UnixConnector(
                path=self.address.unix_path,
                limit=0,
                keepalive_timeout=self.timeouts.upstream_idle,
            )
        else:
            connector = aiohttp.TCPConnector(
                limit=0,
                family=_family_for(self.address.base),
                use_dns_cache=True,
                ttl_dns_cache=10,
                enable_cleanup_closed=False,
                keepalive_timeout=self.timeouts.upstream_idle,
            )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=None,
                sock_connect=self.timeouts.connect,
                sock_read=self.timeouts.read,
            ),
            read_bufsize=STREAM_CHUNK,
            # aiohttp's default (8190) refuses legal heads (a 9 KB Content-Security-Policy).
            max_line_size=self.limits.max_upstream_header_line,
            max_field_size=self.limits.max_upstream_header_line,
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def url(self, raw_target: str) -> URL:
        # The raw path and query go upstream byte for byte, never re-encoded.
        return URL(self.address.base + raw_target, encoded=True)

    async def probe(self) -> bool:
        """Whether the upstream accepts connections now (for readiness)."""
        try:
            if self.address.unix_path is not None:
                _, writer = await asyncio.wait_for(
                    asyncio.open_unix_connection(self.address.unix_path), self.timeouts.connect
                )
            else:
                url = URL(self.address.base)
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(url.host, url.port), self.timeouts.connect
                )
        except (OSError, TimeoutError):
            return False
        writer.close()
        return True


def _family_for(base: str) -> socket.AddressFamily:
    host = URL(base).host or ""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return socket.AF_UNSPEC
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET
