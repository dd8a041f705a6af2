"""Typed failures of the upstream HTTP/1.1 client, each with the answer the edge gives.

``kind`` is what the access log and metrics record (the same words aiohttp's path
used: ``connect``, ``timeout``, ``disconnected``, ``payload``); ``status`` and
``answer`` are the error the edge answers with when no response head has gone to the
client yet.
"""

from __future__ import annotations


class UpstreamError(Exception):
    """Something went wrong talking to the upstream."""

    kind = "upstream"
    status = 502
    answer = "upstream unavailable"


class ConnectFailed(UpstreamError):
    """The upstream refused or could not be reached."""

    kind = "connect"


class ConnectTimeout(UpstreamError, TimeoutError):
    """Connecting took longer than ``timeouts.connect``."""

    kind = "timeout"
    status = 504
    answer = "upstream timed out"


class ReadTimeout(UpstreamError, TimeoutError):
    """The upstream sent nothing for ``timeouts.read`` seconds while an answer was due."""

    kind = "timeout"
    status = 504
    answer = "upstream timed out"


class PoolTimeout(UpstreamError, TimeoutError):
    """Every pooled connection stayed busy for ``timeouts.pool_wait`` seconds."""

    kind = "pool_timeout"
    status = 503
    answer = "no upstream connection free"


class Disconnected(UpstreamError):
    """The connection closed before the response head was complete.

    ``nothing_received`` tells a stale pooled connection (closed by the upstream
    while idle, found out on reuse) from one that died mid-answer.
    """

    kind = "disconnected"

    def __init__(self, message: str, *, nothing_received: bool) -> None:
        super().__init__(message)
        self.nothing_received = nothing_received


class ProtocolFault(UpstreamError):
    """The upstream's answer is not valid HTTP/1.1 (or not one the edge relays)."""

    kind = "payload"
    answer = "upstream sent an invalid response"


class HeadersTooLarge(ProtocolFault):
    """A response header line or the whole head is past the configured limit."""

    kind = "headers_too_large"


class BodyIncomplete(UpstreamError):
    """The response body ended before its framing said it would (length or chunks)."""

    kind = "payload"
