"""The upstream client: the only module that talks to the upstream.

:meth:`Upstream.send` sends one request and returns an :class:`UpstreamResponse`
(status, headers, body read whole or piece by piece); :meth:`Upstream.connect_websocket`
opens a WebSocket. Whatever goes wrong on the way (the upstream, or the client's body
being streamed to it) comes out as one typed failure, :class:`ForwardFailure`, which
says whose fault it was and what the client is answered. Headers are prepared by
:mod:`proxy.headers`; this module only moves them.

The pool is aiohttp's client (one connector, see :mod:`proxy.connector`); nothing of
it shows through this interface but ``aiohttp.ClientWebSocketResponse`` for a relayed
WebSocket. Uses aiohttp's public client API only; the one private override lives in
:mod:`proxy.connector`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .bodies import (
    BodyTooLarge,
    ClientBodyFault,
    ClientBodyIncomplete,
    ClientBodyTimeout,
    client_body_fault,
    read_whole_body,
)
from .connector import make_connector
from .policy import Limits, Timeouts
from .pool import PoolBusy, Slot, Slots
from .records import ErrorKind, RequestError

log = logging.getLogger("cors_edge")

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


def _bad_response(error: BaseException, limits: Limits) -> ForwardFailure | None:
    """The upstream's response head refused by the parser (a header line past
    ``limits.max_upstream_header_line``, malformed HTTP), said in words for the log.
    aiohttp wraps the parser's exception (``ClientResponseError`` from a copy of it)."""
    seen: BaseException | None = error
    refused: HttpProcessingError | None = None
    for _ in range(5):
        if seen is None:
            break
        if isinstance(seen, LineTooLong):
            limit = limits.max_upstream_header_line
            return _bad_response_failure(
                f"a response header line over {limit} bytes (limits.max_upstream_header_line)"
            )
        if isinstance(seen, HttpProcessingError):
            refused = seen
        seen = seen.__cause__
    if refused is None:
        return None
    reason = " ".join((refused.message or type(refused).__name__).split())[:200]
    return _bad_response_failure(f"invalid response head ({reason})")


def _bad_response_failure(detail: str) -> ForwardFailure:
    error = RequestError(ErrorKind.BAD_RESPONSE, detail=detail)
    return ForwardFailure(error, 502, "upstream sent an invalid response")


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


def _sending_failure(error: BaseException, limits: Limits) -> ForwardFailure:
    """What a failure to send a request (and get its response head) means."""
    fault = client_body_fault(error)
    if fault is not None:  # the client's body, not the upstream
        return _client_body_failure(fault)
    bad = _bad_response(error, limits)
    if bad is not None:
        return bad
    if isinstance(error, aiohttp.ClientPayloadError):
        return ForwardFailure(
            RequestError(ErrorKind.PAYLOAD), 502, "upstream failed while receiving the request"
        )
    if isinstance(error, TimeoutError | aiohttp.ServerTimeoutError):
        return ForwardFailure(RequestError(ErrorKind.TIMEOUT), 504, "upstream timed out")
    # Explained on stderr, rate-limited, by accesslog.UpstreamErrorLog.
    log.debug("upstream unavailable: %s", error)
    return ForwardFailure(_upstream_error(error), 502, "upstream unavailable")


class UpstreamResponse:
    """The upstream's answer: status and headers at once, the body when asked for."""

    __slots__ = ("_response", "_slot", "content_length", "headers", "reason", "status")

    def __init__(self, response: aiohttp.ClientResponse, slot: Slot) -> None:
        self._response = response
        self._slot = slot
        self.status = response.status
        self.reason = response.reason
        self.headers: CIMultiDictProxy[str] = response.headers
        self.content_length = response.content_length

    async def read(self) -> bytes:
        """The whole body (for small ones, sent on with the head in one write)."""
        try:
            return await self._response.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            status = 504 if isinstance(error, TimeoutError) else 502
            raise ForwardFailure(
                _upstream_error(error), status, "upstream failed mid-response"
            ) from error

    async def next_chunk(self) -> bytes:
        """The next piece of the body as received; ``b""`` once it is complete. A
        failure here is an aborted response (its head is already on its way)."""
        content = self._response.content
        try:
            while True:
                # readchunk() hands over each received piece as is; readany() would
                # first join everything buffered into a new bytes object (a copy).
                chunk, _ = await content.readchunk()
                # (b"", True) marks a chunk boundary, but aiohttp's shared empty
                # payload (HEAD, 204, 304) answers it for ever: only EOF ends the body.
                if chunk or content.at_eof():
                    return chunk
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            raise ForwardFailure(
                _upstream_error(error, aborted=True), 502, "upstream failed mid-response"
            ) from error

    def release(self) -> None:
        """Give the connection back to the pool (or close it if the body is unread)."""
        self._response.release()
        self._slot.release()


class Upstream:
    """The pooled client for the configured upstream."""

    def __init__(self, address: str, timeouts: Timeouts, limits: Limits) -> None:
        self.address = UpstreamAddress.parse(address)
        self.timeouts = timeouts
        self.limits = limits
        self.slots = Slots(limits.max_upstream_connections)
        self._session: aiohttp.ClientSession | None = None
        self._ws_session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("Upstream.start() was not awaited")
        return self._session

    async def send(
        self, method: str, raw_target: str, headers: CIMultiDict[str], body: Body
    ) -> UpstreamResponse:
        """Send one request; its response once the head has arrived. Raises
        :class:`ForwardFailure`. The caller releases the response (and its slot)."""
        try:
            slot = await self.slots.acquire(self.timeouts.pool_wait)
        except PoolBusy:
            raise ForwardFailure(
                RequestError(ErrorKind.POOL_WAIT), 503, "upstream busy: no connection free"
            ) from None
        try:
            response = await self._client().request(
                method,
                self.url(raw_target),
                headers=headers,
                data=body,
                allow_redirects=False,
                compress=None,
                chunked=None,
            )
        except (
            BodyTooLarge,
            ClientBodyTimeout,
            ClientBodyIncomplete,
            aiohttp.ClientError,
            OSError,
        ) as error:
            slot.release()
            raise _sending_failure(error, self.limits) from error
        except BaseException:
            slot.release()
            raise
        limit = self.limits.max_upstream_header_bytes
        if sum(len(name) + len(value) + 4 for name, value in response.raw_headers) > limit:
            response.close()  # the body is never read: the connection cannot be reused
            slot.release()
            raise _bad_response_failure(
                f"a response head over {limit} bytes (limits.max_upstream_header_bytes)"
            )
        return UpstreamResponse(response, slot)

    async def connect_websocket(
        self, raw_target: str, headers: CIMultiDict[str], protocols: list[str]
    ) -> aiohttp.ClientWebSocketResponse:
        """Open a WebSocket upstream (no autoping: a transparent relay). Raises
        :class:`ForwardFailure` with the status the client gets."""
        if self._ws_session is None:
            raise RuntimeError("Upstream.start() was not awaited")
        try:
            # Their own connections (never the HTTP pool's): sockets that stay open for
            # hours must not starve plain requests. limits.max_websockets bounds them.
            return await self._ws_session.ws_connect(
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
        address, timeouts = self.address, self.timeouts
        http = make_connector(
            address.base, address.unix_path, self.limits.max_upstream_connections, timeouts
        )
        self._session = _client_session(http, timeouts, self.limits)
        # No connector limit: the relay counts WebSockets itself (limits.max_websockets).
        self._ws_session = _client_session(
            make_connector(address.base, address.unix_path, 0, timeouts), timeouts, self.limits
        )

    async def close(self) -> None:
        for session in (self._session, self._ws_session):
            if session is not None:
                await session.close()
        self._session = self._ws_session = None

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


def _client_session(
    connector: aiohttp.BaseConnector, timeouts: Timeouts, limits: Limits
) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        timeout=aiohttp.ClientTimeout(
            total=None,
            connect=None,
            sock_connect=timeouts.connect,
            sock_read=timeouts.read,
        ),
        read_bufsize=STREAM_CHUNK,
        # aiohttp's default (8190) refuses legal heads (a 9 KB Content-Security-Policy).
        max_line_size=limits.max_upstream_header_line,
        max_field_size=limits.max_upstream_header_line,
    )
