"""What an upstream response head may be, and why one was refused, in words for the log.

``limits.max_upstream_header_line`` bounds one header line (the parser refuses a
longer one) and ``limits.max_upstream_header_bytes`` the whole head. A refused head
is answered 502 by :mod:`proxy.forward`; these functions say which limit it passed
(or what else the parser found wrong), so the log names it instead of an exception.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from .policy import Limits


def refused_head(error: BaseException, limits: Limits) -> str | None:
    """Why the parser refused the upstream's response head; ``None`` if it did not.

    aiohttp's client wraps the parser's exception (``ClientResponseError`` from a copy
    of it), so the causes are followed."""
    seen: BaseException | None = error
    refused: HttpProcessingError | None = None
    for _ in range(5):
        if seen is None:
            break
        if isinstance(seen, LineTooLong):
            limit = limits.max_upstream_header_line
            return f"a response header line over {limit} bytes (limits.max_upstream_header_line)"
        if isinstance(seen, HttpProcessingError):
            refused = seen
        seen = seen.__cause__
    if refused is None:
        return None
    reason = " ".join((refused.message or type(refused).__name__).split())[:200]
    return f"invalid response head ({reason})"


def oversized_head(raw_headers: Iterable[tuple[bytes, bytes]], limits: Limits) -> str | None:
    """Why a parsed response head is too large as a whole; ``None`` if it is not."""
    limit = limits.max_upstream_header_bytes
    if sum(len(name) + len(value) + 4 for name, value in raw_headers) > limit:
        return f"a response head over {limit} bytes (limits.max_upstream_header_bytes)"
    return None
