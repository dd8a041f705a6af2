"""Header hygiene for the hop between client and upstream.

On the way in: hop-by-hop headers dropped (RFC 9110 §7.6.1 and those ``Connection``
names), method overrides dropped, ``Host`` kept, ``X-Forwarded-*`` set (appended to
only for a trusted peer).
On the way out: hop-by-hop headers and the upstream's own ``Access-Control-*``
dropped, since cors-edge is the single owner of CORS on the way out.

Pure functions over header multidicts: no I/O, no aiohttp.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Protocol

from multidict import CIMultiDict, CIMultiDictProxy

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
        "x-client-ip",
        "true-client-ip",
        "front-end-https",
    }
)

# The request method is the one the policy judged (``methods``, the preflight's grant);
# a method-override middleware (Flask's documentation has one, so do Rails, Symfony and
# ASP.NET conventions) would run another. No proxy sets these, so trust does not make
# them true: they are dropped from every peer.
METHOD_OVERRIDE_HEADERS = frozenset(
    {"x-http-method-override", "x-http-method", "x-method-override"}
)

_ALWAYS_DROPPED = HOP_BY_HOP | METHOD_OVERRIDE_HEADERS
_UNTRUSTED_DROPPED = _ALWAYS_DROPPED | ROUTING_HEADERS

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RequestHeaders(Protocol):
    """What the edge reads of a request's headers: a multidict, or what looks like one."""

    def get(self, key: str, /) -> str | None: ...
    def getall(self, key: str, default: Sequence[str], /) -> Sequence[str]: ...


def joined(headers: RequestHeaders, name: str) -> str | None:
    """Every field of ``name`` as one comma list (RFC 9110 §5.3), ``None`` when absent:
    a second ``Access-Control-Request-Headers`` field must not go unread, and two
    ``Access-Control-Request-Method`` fields are no method at all."""
    values = headers.getall(name, ())
    if not values:
        return None
    return values[0] if len(values) == 1 else ", ".join(values)


# The dropped-name sets for each Connection field list seen, per base set: a handful in
# practice (close, keep-alive, Upgrade), so a request does a dict look-up instead of
# splitting the field and building a set. Bounded, as the values come from clients.
_DROPPED_MAX = 256
_dropped_sets: dict[tuple[frozenset[str], tuple[str, ...]], frozenset[str]] = {}


def _dropped(base: frozenset[str], headers: CIMultiDictProxy[str]) -> frozenset[str]:
    """``base`` plus the names the ``Connection`` fields list (hop-by-hop for this one
    message)."""
    values = tuple(headers.getall("Connection", ()))
    if not values:
        return base
    key = (base, values)
    dropped = _dropped_sets.get(key)
    if dropped is None:
        if len(_dropped_sets) >= _DROPPED_MAX:
            _dropped_sets.clear()
        dropped = _dropped_sets[key] = base | connection_tokens(headers)
    return dropped


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
    dropped = _dropped(_ALWAYS_DROPPED if trusted_peer else _UNTRUSTED_DROPPED, headers)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        lower = name.lower()
        if lower in dropped or lower in FORWARDED_HEADERS or "_" in lower:
            continue
        if not trusted_peer and lower.startswith("x-forwarded-"):
            continue  # the whole X-Forwarded-* family: only a trusted peer states it
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
    """Whether ``peer`` is in ``trust_forwarded_from`` (its X-Forwarded-* count)."""
    if not networks or not peer:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in networks)


def response_headers(
    headers: CIMultiDictProxy[str], *, keep_cors: bool = False
) -> list[tuple[str, str]]:
    """Upstream response headers minus hop-by-hop, ``CORS-Edge-*`` (cors-edge's own: an
    upstream's must never pass for the edge's) and (unless ``keep_cors``, for shadow
    mode) ``Access-Control-*``."""
    dropped = _dropped(HOP_BY_HOP, headers)
    return [
        (name, value)
        for name, value in headers.items()
        if (lower := name.lower()) not in dropped
        and not lower.startswith("cors-edge-")
        and (keep_cors or not lower.startswith("access-control-"))
    ]
