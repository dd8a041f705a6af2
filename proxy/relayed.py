"""The responses an upstream answer is relayed in: aiohttp's, minus what it would invent.

aiohttp completes every response head it sends: a ``Server: Python/… aiohttp/…``
banner when there is no ``Server``, and ``Content-Type: application/octet-stream``
when a body has none. For a relayed answer both are false statements about the
upstream's response (and the banner advertises the proxy's exact versions), so
:class:`RelayedResponse` and :class:`RelayedStreamResponse` send exactly the headers
they were given (plus ``Date`` when missing, which RFC 9110 §6.6.1 asks of a proxy).

Reliance on aiohttp internals: the private ``StreamResponse._prepare_headers``
(aiohttp 3.14, pinned in ``pyproject.toml``) is where the head is completed; the
override runs it and takes back what it added. ``tests/hardening/test_relayed.py``
checks the bytes on the wire.
"""

from __future__ import annotations

from aiohttp import hdrs, web

_INVENTED = (hdrs.SERVER, hdrs.CONTENT_TYPE)


class _AsRelayed(web.StreamResponse):
    async def _prepare_headers(self) -> None:
        headers = self.headers
        missing = [name for name in _INVENTED if name not in headers]
        await super()._prepare_headers()
        for name in missing:
            headers.popall(name, None)


class RelayedStreamResponse(_AsRelayed):
    """A streamed relayed answer: its head is the upstream's, nothing invented."""


class RelayedResponse(_AsRelayed, web.Response):
    """A small relayed answer sent in one write: its head is the upstream's."""
