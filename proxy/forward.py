"""The upstream client: one pooled connector, streamed bodies, header hygiene.

Only this module talks to the upstream. It rewrites request headers (hop-by-hop
dropped, ``Host`` kept, ``X-Forwarded-*`` set) and filters response headers
(hop-by-hop and the upstream's own ``Access-Control-*`` dropped: cors-edge is the
single owner of CORS on the way out).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .connector import LiteralAddressConnector
from .policy import Limits, Timeouts

# RFC 9110 §7.6.1 plus the legacy proxy ones; Expect is answered by the edge itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)
FORWARDED_HEADERS = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"})
# Headers a WSGI server, framework or middleware may read as routing or trust input
# (the mount prefix, the path, the scheme, the client's address): gunicorn's
# forwarder_headers (SCRIPT_NAME, PATH_INFO) and secure_scheme_headers (X-Forwarded-Proto,
# -Protocol, -Ssl), Werkzeug's ProxyFix (X-Forwarded-For, -Proto, -Host, -Port, -Prefix),
# and the common X-Script-Name / X-Original-URL style conventions. Only a peer in
# trust_forwarded_from may set them; from anyone else they are dropped.
ROUTING_HEADERS = frozenset(
    {
        "forwarded",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "x-forwarded-path",
        "x-forwarded-uri",
        "x-forwarded-server",
        "x-forwarded-ssl",
        "x-forwarded-protocol",
        "x-forwarded-scheme",
        "x-script-name",
        "x-scheme",
        "x-url-scheme",
        "x-original-url",
        "x-original-uri",
        "x-rewrite-url",
        "x-real-ip",
        "front-end-https",
    }
)
STREAM_CHUNK = 256 * 1024

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BodyTooLarge(Exception):
    """The client's request body exceeds ``limits.max_body_bytes``."""


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


def connection_tokens(headers: CIMultiDictProxy[str]) -> set[str]:
    """Header names listed in ``Connection``: hop-by-hop for this one message."""
    tokens: set[str] = set()
    for value in headers.getall("Connection", ()):
        tokens.update(token.strip().lower() for token in value.split(",") if token.strip())
    return tokens


def upstream_request_headers(
    headers: CIMultiDictProxy[str],
    *,
    peer: str | None,
    scheme: str,
    trusted_peer: bool,
) -> CIMultiDict[str]:
    """The headers to send upstream for a client request.

    A name with ``_`` is never forwarded (nginx's default too): a WSGI server maps
    ``-`` and ``_`` both to ``_``, so ``SCRIPT_NAME`` or ``X_Forwarded_For`` would
    reach the application as routing or trust input (gunicorn takes ``SCRIPT_NAME``
    and ``PATH_INFO`` headers from its front proxy, which is us).
    """
    dropped = HOP_BY_HOP | connection_tokens(headers) if "Connection" in headers else HOP_BY_HOP
    if not trusted_peer:
        dropped = dropped | ROUTING_HEADERS
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        lower = name.lower()
        if lower in dropped or lower in FORWARDED_HEADERS or "_" in lower:
            continue
        out.add(name, value)
    if "TE" in headers and "trailers" in headers["TE"].lower():
        out["TE"] = "trailers"
    host = headers.get("Host", "")
    _set_forwarded(out, headers, "X-Forwarded-For", peer or "", trusted_peer)
    _set_forwarded(out, headers, "X-Forwarded-Proto", scheme, trusted_peer)
    if host:
        _set_forwarded(out, headers, "X-Forwarded-Host", host, trusted_peer)
    return out


def _set_forwarded(
    out: CIMultiDict[str], incoming: CIMultiDictProxy[str], name: str, value: str, trusted: bool
) -> None:
    previous = incoming.getall(name, ()) if trusted else ()
    out[name] = ", ".join((*previous, value)) if previous else value


def is_trusted(peer: str | None, networks: tuple[Network, ...]) -> bool:
    if not networks or not peer:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in networks)


def response_headers(headers: CIMultiDictProxy[str]) -> list[tuple[str, str]]:
    """Upstream response headers minus hop-by-hop and ``Access-Control-*``."""
    dropped = HOP_BY_HOP | connection_tokens(headers) if "Connection" in headers else HOP_BY_HOP
    return [
        (name, value)
        for name, value in headers.items()
        if name.lower() not in dropped and not name.lower().startswith("access-control-")
    ]


def merge_vary(existing: Iterable[str], add: str) -> str:
    """Merge ``add`` (comma list) into Vary values, case-insensitively deduplicated."""
    names: list[str] = []
    seen: set[str] = set()
    for value in (*existing, add):
        for part in value.split(","):
            name = part.strip()
            if name and name.lower() not in seen:
                seen.add(name.lower())
                names.append(name)
    if "*" in seen:
        return "*"
    return ", ".join(names)


class ClientBodyTimeout(Exception):
    """The client sent nothing of its request body for ``timeouts.client_body`` seconds."""


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


async def limited_body(
    content: aiohttp.StreamReader, max_bytes: int | None, idle_timeout: float | None = None
) -> AsyncIterator[bytes]:
    """Stream the client's body to the upstream, refusing it past ``max_bytes`` and
    giving up when the client is silent for ``idle_timeout`` seconds (slow-body
    clients would otherwise hold an upstream connection for ever)."""
    received = 0
    while True:
        try:
            async with asyncio.timeout(idle_timeout):
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


async def read_small_body(
    content: aiohttp.StreamReader, length: int, timeout: float | None
) -> bytes:
    """Read a small body of known ``length`` whole, within ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            return await content.readexactly(length)
    except TimeoutError:
        raise ClientBodyTimeout from None


class Upstream:
    """The pooled client for the configured upstream."""

    def __init__(self, address: str, timeouts: Timeouts, limits: Limits) -> None:
        self.address = UpstreamAddress.parse(address)
        self.timeouts = timeouts
        self.limits = limits
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("Upstream.start() was not awaited")
        return self._session

    async def start(self) -> None:
        connector: aiohttp.BaseConnector
        if self.address.unix_path is not None:
            connector = aiohttp.UnixConnector(
                path=self.address.unix_path,
                limit=self.limits.max_upstream_connections,
                keepalive_timeout=self.timeouts.upstream_idle,
            )
        else:
            family = _family_for(self.address.base)
            # A literal IP needs no resolver and no address racing: connect directly.
            connector_class = (
                LiteralAddressConnector if family != socket.AF_UNSPEC else aiohttp.TCPConnector
            )
            connector = connector_class(
                limit=self.limits.max_upstream_connections,
                family=family,
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
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def url(self, raw_target: str) -> URL:
        # The raw path and query go upstream byte for byte, never re-encoded.
        return URL(self.address.base + raw_target, encoded=True)

    async def probe(self) -> bool:
        """Whether the upstream accepts connections now (for readiness)."""
        import asyncio

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
