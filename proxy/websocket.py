"""WebSocket upgrades, passed through to the upstream message by message.

Browsers do not apply CORS to WebSockets, but they do send ``Origin``: the edge's
decision (made before this runs) therefore also stops cross-site WebSocket
hijacking on routes with ``enforce: true``. The upstream side is opened through
:meth:`proxy.forward.Upstream.connect_websocket`; a refusal is an ordinary
:func:`~proxy.edge_answers.error_answer`. Public aiohttp API only.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict, CIMultiDictProxy

from .cors import Decision, Verdict
from .edge_answers import SERVER, error_answer
from .forward import ForwardFailure, Upstream
from .origins import parse_origin
from .records import ErrorKind, RequestError, RequestRecord

# Negotiated per hop by aiohttp on each side; the rest of the handshake is forwarded.
_HANDSHAKE = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-accept",
    }
)


# The credentials a browser attaches to a WebSocket handshake on its own.
_CREDENTIALS = ("Cookie", "Authorization")


def may_carry_credentials(
    verdict: Verdict, headers: CIMultiDictProxy[str], scheme: str | None
) -> bool:
    """Whether an upgrade may take the user's cookies and HTTP auth upstream.

    Browsers apply no CORS to WebSockets: a page on any site reads everything the
    socket says, with the victim's cookies attached. So credentials go up only where
    a credentialed CORS read would be allowed too: same-origin, non-browser (no
    ``Origin``), or an allowed origin on a ``supports_credentials`` route. A
    cross-origin upgrade anywhere else (``origins: "*"``, a route without credentials,
    a refused origin under ``enforce: false``, a path no route covers) is stripped,
    not refused: a public socket keeps working for everyone, anonymously.
    ``scheme`` is the one the browser addressed (None when in doubt: then nothing is
    same-origin, see :mod:`proxy.sameorigin`).
    """
    decision = verdict.decision
    if decision in (Decision.SAME_ORIGIN, Decision.NO_ORIGIN):
        return True
    if decision is Decision.ALLOWED:
        return verdict.route is not None and verdict.route.supports_credentials
    if decision is Decision.NO_ROUTE:
        origins = headers.getall("Origin", [])
        if not origins:
            return True
        host = headers.get("Host")
        self_origin = parse_origin(f"{scheme}://{host}") if host and scheme else None
        return (
            len(origins) == 1
            and self_origin is not None
            and (parse_origin(origins[0]) == self_origin)
        )
    return False


def strip_credentials(headers: CIMultiDict[str]) -> None:
    for name in _CREDENTIALS:
        headers.popall(name, None)


def is_websocket_upgrade(request: web.BaseRequest) -> bool:
    headers = request.headers
    return (
        request.method == "GET"
        and headers.get("Upgrade", "").lower() == "websocket"
        and "upgrade" in headers.get("Connection", "").lower()
    )


async def relay_websocket(
    request: web.BaseRequest,
    upstream: Upstream,
    raw_target: str,
    out_headers: CIMultiDict[str],
    verdict: Verdict,
    record: RequestRecord,
    relays: Relays,
) -> web.StreamResponse:
    """Connect upstream first; only then accept the client, with the same subprotocol.

    A message past ``limits.max_websocket_message`` on either hop closes both sides
    with 1009. ``out_headers`` (the headers prepared for the upstream) is left as it is.
    """
    headers = CIMultiDict(
        (name, value) for name, value in out_headers.items() if name.lower() not in _HANDSHAKE
    )
    protocols = [
        protocol.strip()
        for value in request.headers.getall("Sec-WebSocket-Protocol", ())
        for protocol in value.split(",")
        if protocol.strip()
    ]
    if relays.opened >= relays.limit:
        record.error = RequestError(ErrorKind.WEBSOCKETS_FULL)
        return error_answer(verdict, 503, "too many WebSockets open")
    relays.opened += 1  # counted from the connect on: a slow upstream handshake counts too
    try:
        return await _relay(
            request, upstream, raw_target, headers, protocols, verdict, record, relays
        )
    finally:
        relays.opened -= 1


async def _relay(
    request: web.BaseRequest,
    upstream: Upstream,
    raw_target: str,
    headers: CIMultiDict[str],
    protocols: list[str],
    verdict: Verdict,
    record: RequestRecord,
    relays: Relays,
) -> web.StreamResponse:
    try:
        upstream_ws = await upstream.connect_websocket(raw_target, headers, protocols)
    except ForwardFailure as failure:
        if failure.status >= 500:  # a 4xx is the upstream's deliberate refusal
            record.error = failure.error
        return error_answer(verdict, failure.status, failure.message)
    max_message = upstream.limits.max_websocket_message
    client_ws = web.WebSocketResponse(
        protocols=[upstream_ws.protocol] if upstream_ws.protocol else (),
        autoping=False,
        max_msg_size=max_message + 1,  # aiohttp stops reading (and inflating) here
    )
    client_ws.headers["Server"] = SERVER  # not aiohttp's version banner
    if verdict.vary:  # a 101 carries no CORS headers (browsers apply none to it)
        client_ws.headers["Vary"] = verdict.vary
    client_ws.headers.extend(verdict.extra)  # serve --debug's header (proxy/debug.py), if on
    await client_ws.prepare(request)
    timeouts = upstream.timeouts
    relay = Relay(
        client_ws, upstream_ws, max_message, timeouts.websocket_idle, timeouts.client_send
    )
    relays.active.add(relay)
    try:
        async with upstream_ws:
            await relay.run()
    finally:
        relays.active.discard(relay)
    return client_ws


class Relays:
    """The WebSockets being relayed now: at most ``limit`` (``limits.max_websockets``)
    at once, and shutdown can close them properly."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.opened = 0  # relays past the limit check, connecting or running
        self.active: set[Relay] = set()

    def going_away(self) -> int:
        """Close every relayed socket with 1001 Going Away (both sides); how many."""
        for relay in list(self.active):
            relay.going_away()
        return len(self.active)


AnyWebSocket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse
_CLOSE_WAIT = 2.0  # how long a close frame waits for the peer's answer
# Close codes a close frame may carry (RFC 6455 §7.4): 1005, 1006 and 1015 only
# describe a closure locally (no code, no close frame, TLS failure) and are never sent.
_SENDABLE = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)})


def sendable(code: int | None) -> int:
    """The code to pass on to the other side: a peer that vanished without a close
    frame (1006) is, for the other side, a peer that went away (1001)."""
    if code is None:
        return 1000
    if code in _SENDABLE or 3000 <= code <= 4999:
        return code
    return 1001


class Relay:
    """One relayed WebSocket: a pump each way; whichever side ends first decides the
    close code both sides get."""

    def __init__(
        self,
        client: web.WebSocketResponse,
        upstream: aiohttp.ClientWebSocketResponse,
        max_message: int,
        idle_timeout: float,
        send_timeout: float,
    ) -> None:
        self.client = client
        self.upstream = upstream
        self.max_message = max_message
        self.idle_timeout = idle_timeout
        self.send_timeout = send_timeout
        self.code: int | None = None  # the close code both sides get, once decided
        self._stop = asyncio.Event()
        self._last_message = asyncio.get_running_loop().time()

    def going_away(self) -> None:
        """The edge is shutting down: end the relay with 1001 on both sides."""
        if self.code is None:
            self.code = 1001
        self._stop.set()

    async def run(self) -> None:
        tasks = [
            asyncio.ensure_future(self._pump(self.client, self.upstream)),
            asyncio.ensure_future(self._pump(self.upstream, self.client)),
            asyncio.ensure_future(self._stop.wait()),
            asyncio.ensure_future(self._idle()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            self.going_away()  # cut at the end of the grace period: still say goodbye
            raise
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self._close_both(sendable(self.code))

    async def _idle(self) -> None:
        """End the relay once no message went either way for ``idle_timeout`` seconds:
        an idle socket would otherwise hold its upstream connection for ever."""
        loop = asyncio.get_running_loop()
        while (left := self._last_message + self.idle_timeout - loop.time()) > 0:
            await asyncio.sleep(left)
        if self.code is None:
            self.code = 1001

    async def _pump(self, source: AnyWebSocket, sink: AnyWebSocket) -> None:
        loop = asyncio.get_running_loop()
        async for message in source:
            self._last_message = loop.time()  # pings and pongs count: they are heartbeats
            kind = message.type
            if kind is WSMsgType.ERROR:
                # aiohttp closed the source: 1009 past its bound, 1002 on a protocol
                # error. Its own close_code may say 1006 if the peer never answered.
                data = message.data
                self.code = data.code if isinstance(data, aiohttp.WebSocketError) else 1011
                return
            if kind in (WSMsgType.TEXT, WSMsgType.BINARY) and len(message.data) > self.max_message:
                # aiohttp stopped at max_message + 1 bytes (inflated): this is the exact
                # bound, the same on both hops.
                self.code = 1009
                return
            try:
                # A side that stops reading may hold the other for timeouts.client_send
                # at most (the writes wait for it to drain).
                async with asyncio.timeout(self.send_timeout):
                    await _send(sink, message)
            except TimeoutError:
                self.code = 1001
                return
        self.code = source.close_code or 1000  # the source closed: its code

    async def _close_both(self, code: int) -> None:
        """Close both sides with ``code``, each waiting briefly for the peer's answer."""
        for ws in (self.client, self.upstream):
            with contextlib.suppress(TimeoutError, ConnectionError, aiohttp.ClientError):
                await asyncio.wait_for(ws.close(code=code), _CLOSE_WAIT)


async def _send(sink: AnyWebSocket, message: aiohttp.WSMessage) -> None:
    kind = message.type
    if kind is WSMsgType.TEXT:
        await sink.send_str(message.data)
    elif kind is WSMsgType.BINARY:
        await sink.send_bytes(message.data)
    elif kind is WSMsgType.PING:
        await sink.ping(message.data)
    elif kind is WSMsgType.PONG:
        await sink.pong(message.data)
