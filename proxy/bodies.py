"""The client's request body on its way upstream, and its bounds.

A body is refused past ``limits.max_body_bytes`` (413), when the client is silent for
``timeouts.client_body`` seconds (408), and when it trickles: it must be complete by
:func:`body_deadline`, ``client_body`` seconds plus one second per
``timeouts.client_body_min_rate`` bytes received (Apache mod_reqtimeout's MinRate).
Otherwise a client sending a byte every few seconds holds the upstream worker that
reads it for as long as it likes. A client hanging up mid-body is its own fault too.

The faults are plain exceptions raised from inside aiohttp's send (the body iterator);
:func:`client_body_fault` finds them again however aiohttp wrapped them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from multidict import CIMultiDictProxy

from .cors import Verdict
from .edge_answers import error_answer
from .policy import Timeouts


class BodyTooLarge(Exception):
    """The client's request body exceeds ``limits.max_body_bytes``."""


class ClientBodyTimeout(Exception):
    """The client stalled (``timeouts.client_body``) or trickled (:func:`body_deadline`)."""


class ClientBodyIncomplete(Exception):
    """The client hung up (or broke its framing) before its request body was complete."""


ClientBodyFault = BodyTooLarge | ClientBodyTimeout | ClientBodyIncomplete


def client_body_fault(error: BaseException) -> ClientBodyFault | None:
    """The client-side cause of an upstream request failure, if that is what it was.

    aiohttp's client wraps an exception raised by the body iterator (in a
    ``ClientConnectionError`` or ``ClientPayloadError``), keeping it as ``__cause__``.
    """
    seen: BaseException | None = error
    for _ in range(5):
        if seen is None:
            break
        if isinstance(seen, ClientBodyFault):
            return seen
        seen = seen.__cause__
    return None


def only_chunked(headers: CIMultiDictProxy[str]) -> bool:
    """Whether the request's transfer codings (if any) are just ``chunked``."""
    codings = [
        coding.strip().lower()
        for value in headers.getall("Transfer-Encoding", ())
        for coding in value.split(",")
    ]
    return not codings or codings == ["chunked"]


def refused_body(
    request: web.BaseRequest, verdict: Verdict, max_body: int | None
) -> web.Response | None:
    """413 for a body announced past ``max_body``; 501 for a transfer coding other than
    chunked: the parser removes chunked only, so such a body would reach the upstream
    still coded and unlabelled (RFC 9112 §6.1)."""
    length = request.content_length
    if max_body is not None and length is not None and length > max_body:
        return error_answer(verdict, 413, "request body too large")
    if not only_chunked(request.headers):
        response = error_answer(verdict, 501, "transfer coding not implemented")
        response.force_close()
        return response
    return None


def body_deadline(timeouts: Timeouts, received: int, started: float) -> float:
    """When a body of which ``received`` bytes arrived must be complete (loop time)."""
    return started + timeouts.client_body + received / timeouts.client_body_min_rate


async def limited_body(
    content: aiohttp.StreamReader, max_bytes: int | None, timeouts: Timeouts
) -> AsyncIterator[bytes]:
    """Stream the client's body to the upstream within its bounds (module docstring)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    received = 0
    while True:
        deadline = min(
            loop.time() + timeouts.client_body, body_deadline(timeouts, received, started)
        )
        try:
            async with asyncio.timeout_at(deadline):
                chunk = await content.readany()
        except TimeoutError:
            raise ClientBodyTimeout from None
        except (aiohttp.ClientPayloadError, ConnectionError) as error:
            # The client went away mid-body: its doing, not the upstream's.
            raise ClientBodyIncomplete from error
        if not chunk:
            return
        received += len(chunk)
        if max_bytes is not None and received > max_bytes:
            raise BodyTooLarge
        yield chunk


async def read_whole_body(content: aiohttp.StreamReader, length: int, timeouts: Timeouts) -> bytes:
    """Read a body of known (small) ``length`` whole, by :func:`body_deadline`."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout_at(body_deadline(timeouts, length, loop.time())):
            return await content.readexactly(length)
    except TimeoutError:
        raise ClientBodyTimeout from None
    except (asyncio.IncompleteReadError, aiohttp.ClientPayloadError, ConnectionError) as error:
        # The client stopped short, or hung up mid-body.
        raise ClientBodyIncomplete from error
