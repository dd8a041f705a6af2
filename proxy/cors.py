"""The CORS decision engine: request facts in, a decision and the exact headers out.

Pure: no I/O and no aiohttp. The server asks :func:`decide` once per request and
acts on the :class:`Verdict` (answer at the edge, or forward and stamp).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from .origins import parse_origin
from .policy import PREFLIGHT_VARY, TOKEN_RE, Config, RoutePolicy, Unmatched
from .routes import BadPath, RouteTable, routing_path

Headers = tuple[tuple[str, str], ...]


class Decision(StrEnum):
    PREFLIGHT_OK = "preflight_ok"  # answered 204 at the edge
    PREFLIGHT_REFUSED = "preflight_refused"  # answered 403 at the edge
    ALLOWED = "allowed"  # cross-origin, origin allowed: forwarded and stamped
    BLOCKED = "blocked"  # cross-origin, origin refused, enforce: answered 403 at the edge
    UNENFORCED = "unenforced"  # cross-origin, origin refused, enforce off: forwarded bare
    SAME_ORIGIN = "same_origin"  # Origin is the origin the client addressed: forwarded
    NO_ORIGIN = "no_origin"  # no Origin header (curl, servers, navigations): forwarded
    NO_ROUTE = "no_route"  # no route matches the path: forwarded untouched
    BAD_PATH = "bad_path"  # ambiguous raw path: answered 400 at the edge


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: Decision
    route: RoutePolicy | None
    headers: Headers  # CORS headers for the response (edge answer or stamped upstream one)
    vary: str | None  # to merge into the response's Vary
    reason: str
    origin: str | None = None  # the normalised request origin, when valid
    routing_path: str | None = None
    extra: Headers = ()  # on every answer, refusals too (serve --debug: proxy/debug.py)

    @property
    def answered_at_edge(self) -> bool:
        return self.decision in _EDGE_DECISIONS

    @property
    def status(self) -> int | None:
        """The status of an edge answer, ``None`` when the request is forwarded."""
        return _EDGE_STATUS.get(self.decision)

    def answer_headers(self, vary: Sequence[str] = ()) -> list[tuple[str, str]]:
        """The headers this verdict puts on an answer: its CORS headers when it grants
        any, then ``Vary`` (the answer's own ``vary`` values merged with the verdict's).
        The one place an answer's CORS headers are chosen, whoever sends the answer."""
        headers = list(self.headers) if self.decision in _STAMPED else []
        if vary:
            merged = merge_vary(vary, self.vary or "")
            if merged:
                headers.append(("Vary", merged))
        elif self.vary:
            headers.append(("Vary", self.vary))
        if self.extra:
            headers.extend(self.extra)
        return headers


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


# Decisions whose answers carry the verdict's CORS headers: the preflight answered at
# the edge, and the requests forwarded (their upstream answers, or errors the edge makes
# for them). Refusals never do.
_STAMPED = frozenset(
    {Decision.PREFLIGHT_OK, Decision.ALLOWED, Decision.SAME_ORIGIN, Decision.NO_ORIGIN}
)
_EDGE_STATUS = {
    Decision.PREFLIGHT_OK: 204,
    Decision.PREFLIGHT_REFUSED: 403,
    Decision.BLOCKED: 403,
    Decision.BAD_PATH: 400,
}
_EDGE_DECISIONS = frozenset(_EDGE_STATUS)
_NO_HEADERS: Headers = ()


def decide(
    routes: RouteTable[RoutePolicy],
    method: str,
    raw_path: str,
    origin_values: Sequence[str],
    *,
    request_method: str | None = None,
    request_headers: str | None = None,
    request_private_network: str | None = None,
    self_origin: str | None = None,
    block_unmatched: bool = False,
) -> Verdict:
    """Decide one request against ``routes`` (first match wins, in file order).

    ``origin_values`` holds every ``Origin`` header the request carried; more than one
    is never a browser's and is refused. ``request_*`` are the preflight's
    ``Access-Control-Request-*`` values. ``self_origin`` is the normalised origin the
    client addressed (scheme and Host), for recognising same-origin requests; ``None``
    when unknown, and then no request counts as same-origin. ``block_unmatched``
    (``unmatched: block``) refuses cross-origin requests to paths no route matches.
    """
    try:
        path = routing_path(raw_path)
    except BadPath as error:
        return Verdict(Decision.BAD_PATH, None, _NO_HEADERS, None, str(error))
    route = routes.lookup(path)
    if route is None:
        if block_unmatched:
            return _unmatched_blocked(method, path, origin_values, request_method, self_origin)
        return Verdict(
            Decision.NO_ROUTE, None, _NO_HEADERS, None, "no route matches", routing_path=path
        )
    if not origin_values:
        if route.wildcard_response:
            headers = (("Access-Control-Allow-Origin", "*"), *route.actual_headers)
            return Verdict(
                Decision.NO_ORIGIN, route, headers, None, "no Origin header", routing_path=path
            )
        return Verdict(
            Decision.NO_ORIGIN, route, _NO_HEADERS, "Origin", "no Origin header", routing_path=path
        )
    origin = parse_origin(origin_values[0]) if len(origin_values) == 1 else None
    if method == "OPTIONS" and request_method is not None:
        return _preflight(
            route, path, origin, request_method, request_headers, request_private_network
        )
    return _actual(route, path, origin, self_origin)


def _preflight(
    route: RoutePolicy,
    path: str,
    origin: str | None,
    request_method: str,
    request_headers: str | None,
    request_private_network: str | None,
) -> Verdict:
    def refuse(reason: str) -> Verdict:
        return Verdict(
            Decision.PREFLIGHT_REFUSED,
            route,
            _NO_HEADERS,
            PREFLIGHT_VARY,
            reason,
            origin,
            routing_path=path,
        )

    if origin is None:
        return refuse("the Origin header is not a single serialised origin")
    if not route.origins.allows(origin):
        return refuse(f"origin {origin} is not allowed by {route.name}")
    if not TOKEN_RE.fullmatch(request_method):
        return refuse("Access-Control-Request-Method is not a method name")
    if route.methods is not None and request_method not in route.methods_set:
        return refuse(f"method {request_method} is not in {route.name} methods")
    requested = _header_names(request_headers)
    if requested is None:
        return refuse("Access-Control-Request-Headers is not a list of header names")
    if route.allow_headers is not None:
        for name in requested:
            if name not in route.allow_headers:
                return refuse(f"header {name} is not in {route.name} allow_headers")
    wants_private_network = request_private_network == "true"
    if wants_private_network and not route.allow_private_network:
        return refuse(f"private network access is not allowed by {route.name}")

    acao = "*" if route.wildcard_response else origin
    headers: list[tuple[str, str]] = [("Access-Control-Allow-Origin", acao)]
    if route.methods is None:
        headers.append(("Access-Control-Allow-Methods", request_method))
    if route.allow_headers is None and requested:
        headers.append(("Access-Control-Allow-Headers", ", ".join(requested)))
    headers.extend(route.preflight_headers)
    if wants_private_network:
        headers.append(("Access-Control-Allow-Private-Network", "true"))
    return Verdict(
        Decision.PREFLIGHT_OK,
        route,
        tuple(headers),
        PREFLIGHT_VARY,
        f"origin, method and headers allowed by {route.name}",
        origin,
        routing_path=path,
    )


def _actual(route: RoutePolicy, path: str, origin: str | None, self_origin: str | None) -> Verdict:
    vary = None if route.wildcard_response else "Origin"
    if origin is not None and route.origins.allows(origin):
        acao = "*" if route.wildcard_response else origin
        headers = (("Access-Control-Allow-Origin", acao), *route.actual_headers)
        if origin == self_origin:
            return Verdict(
                Decision.SAME_ORIGIN, route, headers, vary, "same-origin request", origin, path
            )
        return Verdict(
            Decision.ALLOWED, route, headers, vary, f"origin allowed by {route.name}", origin, path
        )
    if origin is not None and origin == self_origin:
        return Verdict(
            Decision.SAME_ORIGIN, route, _NO_HEADERS, vary, "same-origin request", origin, path
        )
    reason = (
        f"origin {origin} is not allowed by {route.name}"
        if origin is not None
        else "the Origin header is not a single serialised origin"
    )
    if route.enforce:
        return Verdict(Decision.BLOCKED, route, _NO_HEADERS, "Origin", reason, origin, path)
    return Verdict(
        Decision.UNENFORCED,
        route,
        _NO_HEADERS,
        "Origin",
        f"{reason} (enforce: false)",
        origin,
        path,
    )


def _unmatched_blocked(
    method: str,
    path: str,
    origin_values: Sequence[str],
    request_method: str | None,
    self_origin: str | None,
) -> Verdict:
    """``unmatched: block``: a path no route covers allows no cross-origin reader.

    Same-origin requests and requests without ``Origin`` are forwarded as before; the
    answer then depends on ``Origin``, so it always varies on it.
    """
    origin = parse_origin(origin_values[0]) if len(origin_values) == 1 else None
    if not origin_values:
        return Verdict(
            Decision.NO_ROUTE, None, _NO_HEADERS, "Origin", "no route matches", routing_path=path
        )
    if origin is not None and origin == self_origin:
        reason = "no route matches; same-origin request"
        return Verdict(Decision.NO_ROUTE, None, _NO_HEADERS, "Origin", reason, origin, path)
    reason = (
        f"origin {origin} is not allowed: no route matches (unmatched: block)"
        if origin is not None
        else "the Origin header is not a single serialised origin (unmatched: block)"
    )
    if method == "OPTIONS" and request_method is not None:
        return Verdict(
            Decision.PREFLIGHT_REFUSED, None, _NO_HEADERS, PREFLIGHT_VARY, reason, origin, path
        )
    return Verdict(Decision.BLOCKED, None, _NO_HEADERS, "Origin", reason, origin, path)


def _header_names(value: str | None) -> tuple[str, ...] | None:
    """Parse ``Access-Control-Request-Headers``: lower-cased tokens, or ``None`` if invalid."""
    if not value:
        return ()
    names: list[str] = []
    for part in value.split(","):
        name = part.strip(" \t").lower()
        if not name:
            continue
        if not TOKEN_RE.fullmatch(name):
            return None
        if name not in names:
            names.append(name)
    return tuple(names)


class VerdictCache:
    """Remembers the verdicts of one policy set.

    A verdict depends only on the policy set and the request facts below, and a site
    sees few distinct combinations of them, so the engine runs once per combination.
    The memory is bounded: when full it starts over (hostile variety costs a re-decide,
    never unbounded growth). ``annotate`` (``serve --debug``) rewrites each new verdict
    once, from it and the request's ``Origin`` values, before it is remembered.
    """

    __slots__ = ("_annotate", "_block_unmatched", "_verdicts", "policies", "size")

    def __init__(
        self,
        policies: Config,
        size: int = 4096,
        annotate: Callable[[Verdict, Sequence[str]], Verdict] | None = None,
    ) -> None:
        self.policies = policies
        self.size = size
        self._annotate = annotate
        self._block_unmatched = policies.unmatched is Unmatched.BLOCK
        self._verdicts: dict[tuple[object, ...], Verdict] = {}

    def decide(
        self,
        method: str,
        raw_path: str,
        origin_values: Sequence[str],
        request_method: str | None,
        request_headers: str | None,
        request_private_network: str | None,
        scheme: str | None,
        host: str | None,
    ) -> Verdict:
        """:func:`decide` for the request facts; ``scheme`` is ``None`` when in doubt
        (:func:`proxy.sameorigin.client_scheme`), and then nothing is same-origin."""
        key = (
            method,
            raw_path,
            *origin_values,
            len(origin_values),
            request_method,
            request_headers,
            request_private_network,
            scheme,
            host,
        )
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = decide(
                self.policies.routes,
                method,
                raw_path,
                origin_values,
                request_method=request_method,
                request_headers=request_headers,
                request_private_network=request_private_network,
                self_origin=parse_origin(f"{scheme}://{host}") if host and scheme else None,
                block_unmatched=self._block_unmatched,
            )
            if self._annotate is not None:
                verdict = self._annotate(verdict, origin_values)
            if len(self._verdicts) >= self.size:
                self._verdicts.clear()
            self._verdicts[key] = verdict
        return verdict
