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
read is always safe for a streaming parser; every other read is passed through as is.

Reliance on aiohttp internals: the parser object of ``RequestHandler`` (its private
``_parser``) and the ``(messages, upgraded, tail)`` result of ``feed_data``, pinned
to aiohttp 3.14; ``tests/hardening/test_parser_guard.py`` checks it over sockets.
"""

from __future__ import annotations

from typing import Any

_MARKS = (b"pgrade", b"PGRADE")  # Upgrade, upgrade, UPGRADE (a header name or token)
_KEEP = len(_MARKS[0])


class UpgradeSafeParser:
    """Delegates to aiohttp's request parser; see the module docstring."""

    __slots__ = ("_body_left", "_inner", "_last")

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._body_left = 0  # body bytes of an unswitched upgrade request still to feed
        self._last = b""  # the end of the previous read, for a mark split across reads

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def feed_data(self, data: bytes) -> tuple[Any, bool, bytes]:
        edge = self._last + data[:_KEEP]
        self._last = data[-_KEEP:]
        if not self._body_left and not any(m in data or m in edge for m in _MARKS):
            return self._inner.feed_data(data)  # type: ignore[no-any-return]
        return self._feed_in_pieces(data)

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
            if upgraded:  # a WebSocket: the rest is the upgraded stream
                return messages, True, tail + bytes(view)
            if got:
                message = got[-1][0]
                if message.upgrade and not message.chunked:
                    # Its body (if any) ends the request: feed exactly that much.
                    self._body_left = int(message.headers.get("Content-Length", "0") or 0)
        return messages, False, b""
