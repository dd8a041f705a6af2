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
from multidict import CIMultiDict

from .cors import Verdict
from .edge_answers import error_answer
from .forward import ForwardFailure, Upstream

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
) -> web.StreamResponse:
    """Connect upstream first; only then accept the client, with the same subprotocol.

    ``out_headers`` (the headers prepared for the upstream) is left as it is."""
    headers = CIMultiDict(
        (name, value) for name, value in out_headers.items() if name.lower() not in _HANDSHAKE
    )
    protocols = [
        protocol.strip()
        for value in request.headers.getall("Sec-WebSocket-Protocol", ())
        for protocol in value.split(",")
        if protocol.strip()
    ]
    try:
        upstream_ws = await upstream.connect_websocket(raw_target, headers, protocols)
    except ForwardFailure as failure:
        return error_answer(verdict, failure.status, failure.message)
    client_ws = web.WebSocketResponse(
        protocols=[upstream_ws.protocol] if upstream_ws.protocol else (),
        autoping=False,
        max_msg_size=0,
    )
    if verdict.vary:  # a 101 carries no CORS headers (browsers apply none to it)
        client_ws.headers["Vary"] = verdict.vary
    await client_ws.prepare(request)
    async with upstream_ws:
        pumps = [
            asyncio.ensure_future(_pump(client_ws, upstream_ws)),
            asyncio.ensure_future(_pump(upstream_ws, client_ws)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            for pump in pumps:
                with contextlib.suppress(asyncio.CancelledError):
                    await pump
    await client_ws.close()
    return client_ws


async def _pump(
    source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
) -> None:
    async for message in source:
        if message.type is WSMsgType.TEXT:
            await sink.send_str(message.data)
        elif message.type is WSMsgType.BINARY:
            await sink.send_bytes(message.data)
        elif message.type is WSMsgType.PING:
            await sink.ping(message.data)
        elif message.type is WSMsgType.PONG:
            await sink.pong(message.data)
        elif message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            break
    await sink.close(code=source.close_code or 1000)
