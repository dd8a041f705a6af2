"""``cors-edge probe``: ask any server what a browser would ask, judge it as a browser would.

For ``fetch(URL, {method, headers, credentials})`` from a page at ORIGIN this sends
the CORS-preflight when the request is not CORS-safelisted, then the request itself,
and follows redirects the way fetch's "HTTP-redirect fetch" does: a new preflight on
each cross-origin hop that needs one, ``Origin: null`` once a redirect has left a
cross-origin URL for another origin, no CORS at all while the URL is the page's own
origin. Every answer goes through proxy/browser.py, the same check ``explain`` uses.

The I/O is the standard library's http.client, one connection per request, so that
nothing (no client library's redirect handling, cookie jar or header defaults) stands
between the probe and what a browser would send.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from . import __version__
from .browser import (
    FORBIDDEN_METHODS,
    Check,
    check_preflight,
    check_response,
    needs_preflight,
    normalize_method,
    page_headers,
    preflight_request,
    unsafe_header_names,
)
from .nearmiss import nearest
from .origins import parse_origin
from .policy import TOKEN_RE

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 20  # "If request's redirect count is 20, then return a network error."
_BODY_LIMIT = 1 << 20  # read at most this much of a body before closing
# "A request-body-header name is a header name that is a byte-case-insensitive match
# for one of: `Content-Encoding`, `Content-Language`, `Content-Location`, `Content-Type`."
_REQUEST_BODY_HEADERS = frozenset(
    {"content-encoding", "content-language", "content-location", "content-type"}
)


class ProbeError(Exception):
    """The arguments are wrong, or the server could not be reached (exit status 2)."""


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request the probe sent, the answer, and the browser's check of it."""

    kind: str  # "preflight", "request"
    method: str
    url: str
    sent: tuple[tuple[str, str], ...]
    status: int
    received: tuple[tuple[str, str], ...]
    check: Check | None  # None: same-origin, no CORS check applies
    note: str = ""


@dataclass(slots=True)
class ProbeResult:
    url: str
    origin: str
    method: str
    credentials: bool
    exchanges: list[Exchange] = field(default_factory=list)
    readable: bool = False
    reason: str = ""
    chromium_differs: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "url": self.url,
            "origin": self.origin,
            "method": self.method,
            "credentials": self.credentials,
            "readable": self.readable,
            "reason": self.reason,
            "chromium_differs": self.chromium_differs,
            "exchanges": [_exchange_json(exchange) for exchange in self.exchanges],
        }


def _exchange_json(exchange: Exchange) -> dict[str, object]:
    check = exchange.check
    return {
        "kind": exchange.kind,
        "method": exchange.method,
        "url": exchange.url,
        "request_headers": [list(pair) for pair in exchange.sent],
        "status": exchange.status,
        "response_headers": [list(pair) for pair in exchange.received],
        "cors_check": None
        if check is None
        else {"ok": check.ok, "steps": list(check.steps), "reason": check.reason},
        "note": exchange.note,
    }


def origin_of(url: str) -> str | None:
    """The serialised origin of an http(s) URL (userinfo dropped), None otherwise."""
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://[::1": not a URL at all
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.netloc.rpartition("@")[2]
    return parse_origin(f"{parts.scheme}://{host}")


def validate(url: str, origin: str, method: str) -> tuple[str, str]:
    """The origin as a browser serialises it and the method fetch() sends, or ProbeError."""
    if origin_of(url) is None:
        raise ProbeError(f"{url!r} is not an http:// or https:// URL")
    page = parse_origin(origin)
    if page is None:
        base = origin_of(origin) if "://" in origin else None
        hint = f"; did you mean {base}?" if base else ""
        raise ProbeError(f"{origin!r} is not an origin (scheme://host[:port] or null){hint}")
    if "@" in urlsplit(url).netloc:
        # fetch() throws a TypeError before anything is sent.
        raise ProbeError(f"fetch() refuses {url!r}: a URL that includes credentials")
    if not TOKEN_RE.fullmatch(method):
        raise ProbeError(f"fetch() refuses the method {method!r}: not a valid HTTP method")
    fetch_method = normalize_method(method)
    if fetch_method.upper() in FORBIDDEN_METHODS:
        raise ProbeError(f"fetch() refuses the method {method} (a forbidden method)")
    return page, fetch_method


def validate_headers(headers: Sequence[tuple[str, str]]) -> None:
    """fetch() throws a TypeError for a header name that is not a token and for a value
    holding NUL, CR or LF; nothing is sent then."""
    for name, value in headers:
        if not TOKEN_RE.fullmatch(name):
            raise ProbeError(f"fetch() refuses the header name {name!r}: not a token")
        if any(char in value for char in "\x00\r\n"):
            raise ProbeError(f"fetch() refuses the value of {name}: it holds NUL, CR or LF")


def probe(
    url: str,
    *,
    origin: str,
    method: str = "GET",
    headers: Sequence[tuple[str, str]] = (),
    credentials: bool = False,
    timeout: float = 10.0,
) -> ProbeResult:
    """Run the fetch; raises ProbeError on bad arguments or an unreachable server."""
    page, method = validate(url, origin, method)
    validate_headers(headers)
    request_headers = page_headers(headers)
    result = ProbeResult(url, page, method, credentials)
    tainted_origin = False  # fetch's "tainted origin flag": Origin becomes null
    cors = page == "null" or origin_of(url) != page  # "response tainting" is "cors"
    for _hop in range(MAX_REDIRECTS + 1):
        sent_origin = "null" if tainted_origin else page
        if cors and needs_preflight(method, request_headers):
            passed = _preflight(result, url, sent_origin, method, request_headers, timeout)
            if not passed:
                return result
        exchange, location = _actual(
            result, url, sent_origin, method, request_headers, cors, timeout
        )
        result.exchanges.append(exchange)
        if exchange.check is not None and not exchange.check.ok:
            return _blocked(result, exchange.check)
        if location is None:
            result.readable = True
            return result
        try:
            next_url = urljoin(url, location)
        except ValueError:  # "http://[::1": the Location is not a URL
            next_url = ""
        refusal = _redirect_refusal(next_url, cors)
        if refusal:
            return _blocked(result, Check(False, (refusal,), refusal))
        method, request_headers = _redirected_request(exchange.status, method, request_headers)
        if origin_of(next_url) != origin_of(url):
            # "If request's current URL's origin is not same origin with locationURL's
            # origin and request's origin is not same origin with request's current
            # URL's origin, then set request's tainted origin flag." ...
            if page == "null" or origin_of(url) != page:
                tainted_origin = True
            # ... "for each headerName of CORS non-wildcard request-header name, delete
            # headerName from request's header list" (Authorization).
            request_headers = [(n, v) for n, v in request_headers if n.lower() != "authorization"]
        url = next_url
        # Main fetch: once "cors", the response tainting never goes back to "basic".
        cors = cors or origin_of(url) != page
    return _blocked(result, Check(False, (), "net::ERR_TOO_MANY_REDIRECTS"))


def _blocked(result: ProbeResult, check: Check) -> ProbeResult:
    result.readable = False
    result.reason = check.reason
    result.chromium_differs = result.chromium_differs or check.chromium_differs
    return result


def _preflight(
    result: ProbeResult,
    url: str,
    origin: str,
    method: str,
    headers: Sequence[tuple[str, str]],
    timeout: float,
) -> bool:
    sent = [*preflight_request(origin, method, headers), ("User-Agent", _AGENT)]
    status, received = send("OPTIONS", url, sent, timeout)
    check = check_preflight(
        origin=origin,
        method=method,
        header_names=unsafe_header_names(headers),
        credentials=result.credentials,
        status=status,
        response_headers=received,
    )
    note = _origin_hint(origin, received) if not check.ok else ""
    result.exchanges.append(
        Exchange("preflight", "OPTIONS", url, tuple(sent), status, tuple(received), check, note)
    )
    result.chromium_differs = result.chromium_differs or check.chromium_differs
    if not check.ok:
        _blocked(result, check)
    return check.ok


def _actual(
    result: ProbeResult,
    url: str,
    origin: str,
    method: str,
    headers: Sequence[tuple[str, str]],
    cors: bool,
    timeout: float,
) -> tuple[Exchange, str | None]:
    sent = [("Accept", "*/*"), ("User-Agent", _AGENT)]
    if any(name.lower() == "accept" for name, _ in headers):
        sent = sent[1:]
    # Browsers send Origin on every CORS request, and on same-origin ones but GET/HEAD.
    if cors or method not in ("GET", "HEAD"):
        sent.append(("Origin", origin))
    sent.extend(headers)
    status, received = send(method, url, sent, timeout)
    location = _get(received, "Location") if status in REDIRECT_STATUSES else None
    check = None
    note = ""
    if cors:
        # HTTP fetch: "If request's response tainting is "cors" and a CORS check for
        # request and response returns failure, then return a network error." -- before
        # redirects are looked at, so a redirect needs the CORS headers too.
        check = check_response(
            origin=origin, credentials=result.credentials, response_headers=received
        )
        note = _origin_hint(origin, received) if not check.ok else ""
    else:
        note = "same origin: no CORS check"
    kind = "redirect" if location is not None else "request"
    return Exchange(kind, method, url, tuple(sent), status, tuple(received), check, note), location


def _origin_hint(origin: str, received: Sequence[tuple[str, str]]) -> str:
    allowed = _get(received, "Access-Control-Allow-Origin")
    if allowed is None or allowed == "*":
        return ""
    miss = nearest(origin, [allowed])
    if miss is None:
        return ""
    return f"the server allows {allowed!r}; the page's origin differs in {'; '.join(miss.details)}"


def _redirect_refusal(next_url: str, cors: bool) -> str:
    try:
        parts = urlsplit(next_url)
        parts.port  # noqa: B018 - a port that is no number fails here
    except ValueError:
        parts = None
    if parts is None or not next_url:
        return "net::ERR_INVALID_REDIRECT"  # the Location is not a URL: a network error
    if parts.scheme not in ("http", "https"):
        # "If locationURL's scheme is not an HTTP(S) scheme, then return a network error."
        return f"Redirect location '{next_url}' has a disallowed scheme for cross-origin requests."
    if cors and (parts.username is not None or parts.password is not None):
        # "If request's response tainting is "cors" and locationURL includes
        # credentials, then return a network error."
        return (
            f"Redirect location '{next_url}' contains a username and password, which is"
            f" disallowed for cross-origin requests."
        )
    return ""


def _redirected_request(
    status: int, method: str, headers: Sequence[tuple[str, str]]
) -> tuple[str, list[tuple[str, str]]]:
    # "If one of the following is true: internalResponse's status is 301 or 302 and
    # request's method is `POST`; internalResponse's status is 303 and request's method
    # is not `GET` or `HEAD`, then: set request's method to `GET` and request's body to
    # null; for each headerName of request-body-header name, delete headerName."
    if (status in (301, 302) and method == "POST") or (
        status == 303 and method not in ("GET", "HEAD")
    ):
        return "GET", [(n, v) for n, v in headers if n.lower() not in _REQUEST_BODY_HEADERS]
    return method, list(headers)


_AGENT = f"cors-edge-probe/{__version__}"


def _get(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    lower = name.lower()
    values = [value for key, value in headers if key.lower() == lower]
    return ", ".join(values) if values else None


def send(
    method: str, url: str, headers: Sequence[tuple[str, str]], timeout: float
) -> tuple[int, list[tuple[str, str]]]:
    """One request on a fresh connection: the status and the response's header list."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl.create_default_context()
        connection = http.client.HTTPSConnection(host, parts.port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        if method in ("POST", "PUT", "PATCH"):
            connection.putheader("Content-Length", "0")  # fetch() without a body
        connection.endheaders()
        response = connection.getresponse()
        if method != "HEAD":
            response.read(_BODY_LIMIT)
        return response.status, list(response.getheaders())
    except (OSError, http.client.HTTPException) as error:  # timeouts are OSErrors
        raise ProbeError(f"{method} {url}: {error.__class__.__name__}: {error}") from None
    finally:
        connection.close()
