"""aiohttp's request parser, kept from losing what is pipelined after an unswitched Upgrade.

llhttp pauses after any request carrying ``Connection: upgrade`` + ``Upgrade``. For
``websocket`` aiohttp switches protocols and keeps the bytes after the request as
the upgraded stream; for any other protocol (``h2c``, ``tcp``…) it answers the
request over HTTP/1.1, as it should, but aiohttp 3.14's C parser drops whatever
followed that request in the same read: the next pipelined request is lost.

:class:`UpgradeSafeParser` wraps the parser and, only while a read may hold such a
request (it mentions ``upgrade``), feeds it in pieces that never run past the end of
a request: up to each ``\\r\\n\\r\\n`` (the end of a head, or of a chunked body), and
exactly the ``Content-Length`` of an unswitched upgrade request's body. Splitting a
read is always safe for a streaming parser; every other read is passed through as is,
and reads of a request body are not even scanned (an upgrade request pipelined in
the same read right behind a body is the one case left as aiohttp has it).

Reliance on aiohttp internals: the parser object of ``RequestHandler`` (its private
``_parser``) and the ``(messages, upgraded, tail)`` result of ``feed_data``, pinned
to aiohttp 3.14; ``tests/hardening/test_parser_guard.py`` checks it over sockets.
"""

from __future__ import annotations

from typing import Any

# "pgrade" / "PGRADE" find Upgrade, upgrade and UPGRADE (a header name or token);
# the last bytes of the previous read catch one split across two reads.
_KEEP = len("pgrade")


class UpgradeSafeParser:
    """Delegates to aiohttp's request parser; see the module docstring."""

    __slots__ = ("_body_left", "_inner", "_last", "_payload")

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._body_left = 0  # body bytes of an unswitched upgrade request still to feed
        self._last = b""  # the end of the previous read, for a mark split across reads
        self._payload: Any = None  # the body of the last request parsed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def feed_data(self, data: bytes) -> tuple[Any, bool, bytes]:
        if self._body_left:
            return self._feed_in_pieces(data)
        payload = self._payload
        if payload is not None and not payload.is_eof():
            # A request body in progress: not scanned (uploads stay at full speed);
            # an upgrade request pipelined right behind it in the same read is the
            # one case left to aiohttp.
            result = self._inner.feed_data(data)
        else:
            last, self._last = self._last, data[-_KEEP:]
            seam = last + data[:_KEEP]
            if b"pgrade" in data or b"PGRADE" in data or b"pgrade" in seam or b"PGRADE" in seam:
                return self._feed_in_pieces(data)
            result = self._inner.feed_data(data)
        if result[0]:
            self._payload = result[0][-1][1]
        return result  # type: ignore[no-any-return]

    def _feed_in_pieces(self, data: bytes) -> tuple[Any, bool, bytes]:
        messages: list[Any] = []
        view = memoryview(data)
        while view:
            if self._body_left:
                cut = min(self._body_left, len(view))
                self._body_left -= cut
            else:
                end = data.find(b"\r\n\r\n", len(data) - len(view))
                cut = len(view) if end == -1 else end + 4 - (len(data) - len(view))
            piece, view = bytes(view[:cut]), view[cut:]
            got, upgraded, tail = self._inner.feed_data(piece)
            messages.extend(got)
            if got:
                self._payload = got[-1][1]
            if upgraded:  # a WebSocket: the rest is the upgraded stream
                return messages, True, tail + bytes(view)
            if got:
                message = got[-1][0]
                if message.upgrade and not message.chunked:
                    # Its body (if any) ends the request: feed exactly that much.
                    self._body_left = int(message.headers.get("Content-Length", "0") or 0)
        return messages, False, b""
