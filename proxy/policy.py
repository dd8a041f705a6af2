"""The compiled configuration: immutable values the server, the engine and the CLI read.

Everything here is built once by the loader (:mod:`proxy.loader`) and never changes;
every header value a route can emit is computed when the route is built, not per request.
Pure: no YAML, no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from enum import StrEnum

from .origins import OriginSet
from .routes import PathRule, RouteTable

TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
PREFLIGHT_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"


class Unmatched(StrEnum):
    """What a cross-origin request to a path no route matches gets (``unmatched:``)."""

    FORWARD = "forward"  # forwarded untouched, as before least privilege
    BLOCK = "block"  # answered like a refused origin on an enforced route


class Scheme(StrEnum):
    """The scheme browsers use to reach the listener (``public_scheme:``)."""

    HTTP = "http"
    HTTPS = "https"  # behind a TLS terminator


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 5.0
    read: float = 60.0
    client_header: float = 10.0
    client_body: float = 60.0  # longest silence while a request body is arriving
    keepalive: float = 75.0  # idle client connection kept this long
    # Idle pooled upstream connections are dropped sooner than the upstream would drop them
    # (gunicorn's --keep-alive defaults to 2 s), so a request never lands on a closing one.
    upstream_idle: float = 1.5
    # A client that reads nothing of its response for this long is cut off, so a slow or
    # stalled reader cannot hold an upstream worker (the upstream blocks writing to us).
    client_send: float = 60.0
    # A request body must keep up this many bytes per second on average (after a grace
    # of client_body seconds): a trickling upload cannot hold an upstream worker.
    client_body_min_rate: float = 1024.0
    # A request waiting longer than this for a free upstream connection gets a 503.
    pool_wait: float = 10.0
    # A relayed WebSocket with no message either way for this long is closed (1001).
    websocket_idle: float = 300.0


@dataclass(frozen=True, slots=True)
class Limits:
    max_body_bytes: int | None = 1024**3  # 413 beyond this; null for no limit
    max_header_bytes: int = 8190  # one header line; longer is refused with 431
    max_headers: int = 100  # more header fields than this is refused with 431
    max_upstream_connections: int = 100  # requests beyond this wait for a free connection
    # An upstream response head past these is answered 502 (a legal 9 KB CSP header passes).
    max_upstream_header_line: int = 16 * 1024
    max_upstream_header_bytes: int = 64 * 1024
    # One WebSocket message (after permessage-deflate inflation), either direction;
    # larger closes the socket with 1009.
    max_websocket_message: int = 1024 * 1024
    # Relayed WebSockets at once, on their own upstream connections (never the HTTP
    # pool's); more are refused with 503.
    max_websockets: int = 512


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    """One route's CORS policy, with every header value it can emit computed once."""

    index: int
    line: int
    rule: PathRule
    origins: OriginSet
    origin_sources: tuple[str, ...]
    methods: tuple[str, ...] | None  # None: whatever the browser asks for ("*")
    allow_headers: frozenset[str] | None  # lower-cased; None means "*"
    allow_headers_listed: tuple[str, ...]
    expose_headers: tuple[str, ...]
    supports_credentials: bool
    max_age: int | None
    send_wildcard: bool
    allow_private_network: bool
    enforce: bool
    shadow: bool = False  # enforce: shadow: decide and compare, forward everything untouched
    # precomputed
    name: str = field(init=False)
    wildcard_response: bool = field(init=False)  # ACAO is a plain "*", never varies
    methods_set: frozenset[str] = field(init=False)
    actual_headers: tuple[tuple[str, str], ...] = field(init=False)
    preflight_headers: tuple[tuple[str, str], ...] = field(init=False)

    def __post_init__(self) -> None:
        kind = "regex" if self.rule.is_regex else "path"
        setter = object.__setattr__  # frozen dataclass: derived fields are set once here
        setter(self, "name", f"routes[{self.index}] {kind} {self.rule.source}")
        setter(self, "wildcard_response", self.origins.any_origin and self.send_wildcard)
        setter(self, "methods_set", frozenset(self.methods or ()))
        actual: list[tuple[str, str]] = []
        if self.supports_credentials:
            actual.append(("Access-Control-Allow-Credentials", "true"))
        if self.expose_headers:
            actual.append(("Access-Control-Expose-Headers", ", ".join(self.expose_headers)))
        setter(self, "actual_headers", tuple(actual))
        preflight: list[tuple[str, str]] = []
        if self.methods is not None:
            preflight.append(("Access-Control-Allow-Methods", ", ".join(self.methods)))
        if self.allow_headers is not None and self.allow_headers_listed:
            preflight.append(("Access-Control-Allow-Headers", ", ".join(self.allow_headers_listed)))
        if self.max_age is not None:
            preflight.append(("Access-Control-Max-Age", str(self.max_age)))
        if self.supports_credentials:
            preflight.append(("Access-Control-Allow-Credentials", "true"))
        setter(self, "preflight_headers", tuple(preflight))


@dataclass(frozen=True, slots=True)
class Config:
    source: str
    sha256: str
    upstream: str
    listen: str
    admin: str
    timeouts: Timeouts
    limits: Limits
    trust_forwarded_from: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    routes: RouteTable[RoutePolicy]
    warnings: tuple[str, ...] = ()
    unmatched: Unmatched = Unmatched.FORWARD
    public_scheme: Scheme | None = None  # None: guessed (see proxy.sameorigin)

    @property
    def route_list(self) -> tuple[RoutePolicy, ...]:
        return tuple(policy for _, policy in self.routes.entries)
