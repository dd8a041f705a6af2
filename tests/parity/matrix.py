"""The Flask-CORS parity matrix: one request matrix, two stacks, a browser's verdict on each.

Stack "Flask-CORS": the legacy app wrapped by ``tests/parity/flask_cors_app.py`` under
gunicorn. Stack "cors-edge": cors-edge with ``PARITY_POLICY`` in front of the plain app.
Each case is what a browser would send: a preflight first when the Fetch standard
requires one (and the actual request only if the preflight passes), then the actual
request. :func:`cors_check` and :func:`preflight_check` implement the Fetch standard's
CORS check and CORS-preflight check, so the verdict is what a browser would conclude.

``python -m tests.parity.generate`` writes ``docs/flask-cors-parity.md`` from
:func:`run_matrix`; ``tests/parity/test_parity.py`` regenerates it and compares.
"""

from __future__ import annotations

import http.client
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from flask import Flask
from flask_cors import CORS

from proxy.loader import PolicyError, load_policy_text
from tests.parity.resources import RESOURCES
from tests.support import (
    REPO,
    EdgeFactory,
    Upstream,
    extend_policy,
    start_upstream,
)

DOC = REPO / "docs" / "flask-cors-parity.md"

# The suites' base policy; reads may take a little longer here (both stacks at once).
PARITY_POLICY = extend_policy({"timeouts": {"read": 5}})

SAFELISTED_CONTENT_TYPES = {
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "text/plain",
}
SIMPLE_METHODS = {"GET", "HEAD", "POST"}
COOKIE = "session=legacy-session-42"

READABLE = "readable"
BLOCKED_PREFLIGHT = "blocked (preflight)"
BLOCKED = "blocked"
NOT_CORS = "not CORS (no Origin)"

APP = "http://localhost:3000"


@dataclass(frozen=True)
class Case:
    id: str
    origin: str | None
    method: str
    path: str
    expect: str  # the browser verdict cors-edge must produce
    headers: tuple[tuple[str, str], ...] = ()
    credentials: bool = False  # credentials: "include" (the cookie is sent)
    private_network: bool = False  # a Private Network Access preflight
    body: str | None = None
    why: str = ""  # what the case shows, and why the two stacks differ where they do


def _h(**headers: str) -> tuple[tuple[str, str], ...]:
    return tuple((name.replace("_", "-"), value) for name, value in headers.items())


JSON = _h(Content_Type="application/json")
TEXT = _h(Content_Type="text/plain")

CASES: list[Case] = [
    # --- /api/**: listed origins, credentials ----------------------------------
    Case("api-get-listed", APP, "GET", "/api/items", READABLE),
    Case("api-get-subdomain", "https://app.example.com", "GET", "/api/items", READABLE),
    Case("api-get-deep-subdomain", "https://a.b.example.com", "GET", "/api/items", READABLE),
    Case("api-get-apex", "https://example.com", "GET", "/api/items", BLOCKED),
    Case("api-get-suffix-attack", "https://app.example.com.evil.test", "GET", "/api/items",
         BLOCKED, why="REGEX_PREFIX"),
    Case("api-get-regex-origin", "https://pr-42.preview.example.com", "GET", "/api/items",
         READABLE),
    Case("api-get-wrong-scheme", "http://pr-42.preview.example.com", "GET", "/api/items",
         BLOCKED),
    Case("api-get-unlisted", "http://evil.test", "GET", "/api/items", BLOCKED),
    Case("api-get-null-origin", "null", "GET", "/api/items", BLOCKED),
    Case("api-get-other-port", "http://localhost:3001", "GET", "/api/items", BLOCKED),
    Case("api-get-no-origin", None, "GET", "/api/items", NOT_CORS, why="NO_ORIGIN"),
    Case("api-me-credentials", APP, "GET", "/api/me", READABLE, credentials=True),
    Case("api-me-credentials-unlisted", "http://evil.test", "GET", "/api/me", BLOCKED,
         credentials=True),
    Case("api-post-simple-unlisted", "http://evil.test", "POST", "/api/items", BLOCKED,
         headers=TEXT, body='{"name":"csrf"}', why="ENFORCE"),
    Case("api-login-simple-unlisted", "http://evil.test", "POST", "/api/login", BLOCKED,
         credentials=True, why="ENFORCE"),
    Case("api-preflight-put-json", APP, "PUT", "/api/echo", READABLE, headers=JSON,
         body="{}"),
    Case("api-preflight-delete", APP, "DELETE", "/api/echo", READABLE, credentials=True),
    Case("api-preflight-authorization", APP, "GET", "/api/echo", READABLE,
         headers=_h(Authorization="Bearer t"), credentials=True),
    Case("api-preflight-patch-refused", APP, "PATCH", "/api/echo", BLOCKED_PREFLIGHT),
    Case("api-preflight-custom-header-refused", APP, "GET", "/api/echo", BLOCKED_PREFLIGHT,
         headers=_h(X_Custom="1")),
    Case("api-preflight-unlisted-origin", "http://evil.test", "PUT", "/api/echo",
         BLOCKED_PREFLIGHT, headers=JSON, body="{}"),
    Case("api-preflight-private-network-refused", APP, "GET", "/api/items",
         BLOCKED_PREFLIGHT, private_network=True),
    # --- the legacy route with its own ACAO * and ACAC true --------------------
    Case("legacy-cors-listed", APP, "GET", "/api/legacy-cors", READABLE, why="LEGACY_ACAO"),
    Case("legacy-cors-listed-credentials", APP, "GET", "/api/legacy-cors", READABLE,
         credentials=True, why="LEGACY_ACAO"),
    Case("legacy-cors-unlisted", "http://evil.test", "GET", "/api/legacy-cors", BLOCKED,
         why="LEGACY_ACAO"),
    # --- errors -----------------------------------------------------------------
    Case("api-boom-500-listed", APP, "GET", "/api/boom", READABLE),
    # --- "*" routes ---------------------------------------------------------------
    Case("public-get-any", "https://anyone.test", "GET", "/public/status", READABLE),
    Case("public-get-no-origin", None, "GET", "/public/status", NOT_CORS),
    Case("public-get-credentials", "https://anyone.test", "GET", "/public/status", BLOCKED,
         credentials=True),
    Case("public-preflight-json", "https://anyone.test", "POST", "/public/echo", READABLE,
         headers=JSON, body="{}"),
    Case("public-preflight-put-refused", "https://anyone.test", "PUT", "/public/echo",
         BLOCKED_PREFLIGHT),
    Case("public-preflight-authorization-refused", "https://anyone.test", "GET",
         "/public/status", BLOCKED_PREFLIGHT, headers=_h(Authorization="Bearer t")),
    Case("reflect-get-any", "https://anyone.test", "GET", "/v1/public/info", READABLE),
    Case("reflect-get-no-origin", None, "GET", "/v1/public/info", NOT_CORS, why="NO_ORIGIN"),
    # --- enforce: false, methods "*", allow_headers "*" ----------------------------
    Case("echo-preflight-patch-any-header", APP, "PATCH", "/echo", READABLE,
         headers=_h(X_Anything="42")),
    Case("echo-preflight-private-network", APP, "GET", "/echo", READABLE,
         private_network=True),
    Case("echo-post-unlisted-unenforced", "http://evil.test", "POST", "/echo", BLOCKED,
         headers=TEXT, body="x"),
    # --- paths no rule covers ----------------------------------------------------
    Case("admin-get-unmatched", APP, "GET", "/admin/users", BLOCKED),
    Case("admin-preflight-delete-unmatched", APP, "DELETE", "/admin/users",
         BLOCKED_PREFLIGHT),
    Case("api-path-case", APP, "GET", "/API/items", BLOCKED),
    # --- ambiguous raw paths -----------------------------------------------------
    Case("path-dotdot-encoded-slash", "https://anyone.test", "GET",
         "/public/..%2fadmin/users", BLOCKED, why="BAD_PATH"),
    Case("path-double-encoded-dots", "https://anyone.test", "GET",
         "/public/%252e%252e/admin/users", READABLE),
]  # fmt: skip

# Explanations of differences, referenced from cases (``why``) or found by the detectors
# in :func:`explain`.
REASONS: dict[str, str] = {
    "PREFLIGHT_AT_EDGE": (
        "cors-edge answers preflights itself (`204`, never forwarded), so no legacy code "
        "runs for them; Flask-CORS lets Flask's automatic `OPTIONS` handler answer `200`, "
        "running the app's `before_request` hooks."
    ),
    "PREFLIGHT_REFUSED_403": (
        "A refused preflight gets `403` at the edge (never forwarded) with no "
        "`Access-Control-*` header at all (the Fetch standard's advice). Flask-CORS lets "
        "Flask answer `200`, still granting the origin (and credentials) when the origin is "
        "listed but leaving out the refused method or header; the browser refuses either "
        "way."
    ),
    "VARY": (
        "cors-edge always sends `Vary` where the answer depends on the request: "
        "`Vary: Origin` on every response of a route whose `Access-Control-Allow-Origin` "
        "is not a plain `*` (also on refusals and on requests without `Origin`), and "
        "`Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers` on "
        "preflights. Flask-CORS adds `Vary: Origin` only when it sends an allowed origin "
        "that could have differed, so a shared cache can serve one origin's answer (or a "
        "refusal) to another."
    ),
    "METHODS_STAR": (
        '`methods: "*"` answers with the requested method (never a literal `*`, which '
        "browsers ignore with credentials); the Flask-CORS equivalent is its default list of "
        "every method. No effect on the verdict."
    ),
    "PREFLIGHT_ONLY_HEADERS": (
        "Flask-CORS repeats `Access-Control-Expose-Headers` on preflights (where it means "
        "nothing) and lists only the requested headers it allows; cors-edge sends the "
        "configured `Access-Control-Allow-Headers` list and keeps expose headers for "
        "actual responses. No effect on the verdict."
    ),
    "ENFORCE": (
        "Server-side enforcement: cors-edge answers a cross-origin request from an origin "
        "the route does not allow with `403` before Flask runs (`enforce: true`), with no "
        "`Access-Control-*` header. Flask-CORS only leaves the CORS headers out, so the "
        "browser hides the answer but the legacy view has already run: for a `GET` that is "
        "wasted work, for a cross-site simple `POST` it is the side effect itself (the item "
        "is created, the login happens)."
    ),
    "LEGACY_ACAO": (
        "The route sets its own `Access-Control-Allow-Origin: *` and "
        "`Access-Control-Allow-Credentials: true`. Flask-CORS skips any response that "
        "already carries `Access-Control-Allow-Origin`, so the wrong headers survive: every "
        "site can read the route without credentials, and a listed origin cannot read it "
        "with credentials (`*` is never accepted with credentials). cors-edge removes the "
        "upstream's `Access-Control-*` headers and stamps the route's policy."
    ),
    "REGEX_PREFIX": (
        "Flask-CORS matches regex origins with `re.match`, from the start only, so "
        "`https://.*\\.example\\.com` also accepts `https://app.example.com.evil.test` "
        "(a domain anyone can register). cors-edge matches `https://*.example.com` "
        "against the whole normalised origin, and anchors `regex:` origins at both ends."
    ),
    "NO_ORIGIN": (
        "A request without `Origin` is not a CORS request. Flask-CORS's `always_send` "
        "(on by default) still stamps it: with the route's literal origins and "
        '`Access-Control-Allow-Credentials: true`, or with `*` on an `origins: "*"` route '
        "even when `send_wildcard` is off. cors-edge adds only `Vary: Origin` there, and "
        "`Access-Control-Allow-Origin: *` only on routes whose answer is a plain `*` for "
        "everyone. No browser verdict depends on it, but a shared cache could hand the "
        "stamped answer to a page of another origin."
    ),
    "BAD_PATH": (
        "Deliberate difference, path normalisation: the raw path holds a dot segment "
        "followed by an encoded slash. cors-edge refuses such ambiguous paths with `400` "
        "before any policy lookup: browsers never send them, and in front of an app they "
        "are how a path can pick a looser route than the endpoint it reaches. Flask-CORS "
        "decides inside Flask on the path Flask routed (`/public/../admin/users`, which "
        "Flask does not resolve), so it stamps the `*` policy of `/public/*` on Flask's "
        "`404`; nothing leaks here either way."
    ),
    "PRIVATE_NETWORK": (
        "A Private Network Access preflight the route does not allow: cors-edge refuses "
        "it at the edge (`403`, no `Access-Control-*` header); Flask-CORS lets Flask answer "
        "`200` with `Access-Control-Allow-Private-Network: false`, which the browser also "
        "refuses."
    ),
}


# --- the Fetch standard's checks ------------------------------------------------


def _get(headers: dict[str, str], name: str) -> str | None:
    return headers.get(name.lower())


def cors_check(origin: str, credentials: bool, headers: dict[str, str]) -> bool:
    """Fetch's CORS check: may the page read this response?"""
    acao = _get(headers, "Access-Control-Allow-Origin")
    if acao is None or "," in acao:
        return False
    if not credentials and acao == "*":
        return True
    if acao != origin:
        return False
    if not credentials:
        return True
    return _get(headers, "Access-Control-Allow-Credentials") == "true"


def _tokens(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def preflight_check(
    origin: str,
    credentials: bool,
    method: str,
    names: list[str],
    private_network: bool,
    status: int,
    headers: dict[str, str],
) -> bool:
    """Fetch's CORS-preflight fetch: ok status, CORS check, methods, headers (and PNA)."""
    if not 200 <= status <= 299 or not cors_check(origin, credentials, headers):
        return False
    methods = _tokens(_get(headers, "Access-Control-Allow-Methods"))
    allowed = [name.lower() for name in _tokens(_get(headers, "Access-Control-Allow-Headers"))]
    wildcard_method = "*" in methods and not credentials
    if method not in SIMPLE_METHODS and method not in methods and not wildcard_method:
        return False
    for name in names:
        if name in allowed:
            continue
        if "*" in allowed and not credentials and name != "authorization":
            continue
        return False
    return not private_network or (_get(headers, "Access-Control-Allow-Private-Network") == "true")


def unsafe_header_names(headers: tuple[tuple[str, str], ...]) -> list[str]:
    """Lower-cased, sorted names of the headers that are not CORS-safelisted."""
    names: set[str] = set()
    for name, value in headers:
        lower = name.lower()
        if lower in ("accept", "accept-language", "content-language"):
            continue
        if lower == "content-type" and value.split(";")[0].strip() in SAFELISTED_CONTENT_TYPES:
            continue
        names.add(lower)
    return sorted(names)


def needs_preflight(case: Case) -> bool:
    return case.origin is not None and (
        case.method not in SIMPLE_METHODS
        or bool(unsafe_header_names(case.headers))
        or case.private_network
    )


# --- running a case against a stack ---------------------------------------------


@dataclass
class Exchange:
    status: int
    cors: list[str]  # "Name: value" of Access-Control-* and Vary, sorted
    merged: dict[str, str] = field(default_factory=dict)  # lower-cased name: joined values


@dataclass
class Outcome:
    verdict: str
    preflight: Exchange | None = None
    actual: Exchange | None = None
    reached: list[str] = field(default_factory=list)  # methods the Flask app ran


def _send(
    port: int, method: str, target: str, headers: list[tuple[str, str]], body: str | None
) -> tuple[int, dict[str, str], list[str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        data = body.encode() if body is not None else None
        if data is not None:
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        response = conn.getresponse()
        response.read()
        raw = response.getheaders()
    finally:
        conn.close()
    lowered: dict[str, str] = {}
    shown: list[str] = []
    for name, value in raw:
        lower = name.lower()
        if lower.startswith("access-control-") or lower == "vary":
            lowered[lower] = f"{lowered[lower]}, {value}" if lower in lowered else value
            shown.append(f"{name.title()}: {value}")
    return response.status, lowered, sorted(shown, key=str.lower)


def run_case(case: Case, port: int, upstream: Upstream) -> Outcome:
    tag = f"case={case.id}"
    target = f"{case.path}?{tag}"
    origin_headers = [("Origin", case.origin)] if case.origin is not None else []
    outcome = Outcome(verdict="")
    if needs_preflight(case):
        assert case.origin is not None
        names = unsafe_header_names(case.headers)
        pre_headers = [
            *origin_headers,
            ("Access-Control-Request-Method", case.method),
        ]
        if names:
            pre_headers.append(("Access-Control-Request-Headers", ",".join(names)))
        if case.private_network:
            pre_headers.append(("Access-Control-Request-Private-Network", "true"))
        status, headers, shown = _send(port, "OPTIONS", target, pre_headers, None)
        outcome.preflight = Exchange(status, shown, headers)
        if not preflight_check(
            case.origin, case.credentials, case.method, names, case.private_network, status,
            headers,
        ):  # fmt: skip
            outcome.verdict = BLOCKED_PREFLIGHT
    if not outcome.verdict:
        actual_headers = [*origin_headers, *case.headers]
        if case.credentials:
            actual_headers.append(("Cookie", COOKIE))
        status, headers, shown = _send(port, case.method, target, actual_headers, case.body)
        outcome.actual = Exchange(status, shown, headers)
        if case.origin is None:
            outcome.verdict = NOT_CORS
        else:
            readable = cors_check(case.origin, case.credentials, headers)
            outcome.verdict = READABLE if readable else BLOCKED
    outcome.reached = [
        str(entry["method"]) for entry in upstream.requests() if str(entry["raw_uri"]).endswith(tag)
    ]
    return outcome


# --- the two stacks ---------------------------------------------------------------


@contextmanager
def flask_cors_stack(tmp: Path) -> Iterator[Upstream]:
    upstream = start_upstream(
        tmp,
        workers=2,
        threads=4,
        app="tests.parity.flask_cors_app:app",
        request_log_name="flask-cors-requests.jsonl",
    )
    try:
        yield upstream
    finally:
        upstream.stop()


@dataclass
class Result:
    case: Case
    flask_cors: Outcome
    edge: Outcome


def run_matrix() -> list[Result]:
    """Start both stacks, run every case against each, stop everything."""
    with tempfile.TemporaryDirectory(prefix="cors-parity-") as name:
        tmp = Path(name)
        (tmp / "fc").mkdir()
        (tmp / "edge").mkdir()
        plain = start_upstream(tmp / "edge", workers=2)
        factory = EdgeFactory(tmp / "edge", plain)
        try:
            edge = factory(PARITY_POLICY)
            with flask_cors_stack(tmp / "fc") as wrapped:
                fc_port = int(wrapped.url.rsplit(":", 1)[1])
                return [
                    Result(case, run_case(case, fc_port, wrapped), run_case(case, edge.port, plain))
                    for case in CASES
                ]
        finally:
            factory.close()
            plain.stop()


# --- explaining and rendering -------------------------------------------------------


def _vary(exchange: Exchange | None) -> list[str]:
    if exchange is None:
        return []
    return [token.lower() for token in _tokens(exchange.merged.get("vary"))]


_LISTS = {
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-expose-headers",
}


def _other(exchange: Exchange | None) -> dict[str, str]:
    """The CORS headers but ``Vary``; list values compared as sets (order and case are moot)."""
    if exchange is None:
        return {}
    return {
        name: ", ".join(sorted({token.lower() for token in _tokens(value)}))
        if name in _LISTS
        else value
        for name, value in exchange.merged.items()
        if name != "vary"
    }


def explain(result: Result) -> list[str]:
    """Reason keys for every difference between the stacks; raises on an unexplained one.

    Each kind of difference (verdict, status, which requests Flask ran, ``Vary``, the
    other CORS headers) must be accounted for by a specific reason, found here from
    the observations or named by the case itself.
    """
    case, fc, edge = result.case, result.flask_cors, result.edge
    named = case.why.split()
    reasons: list[str] = []
    unexplained: list[str] = []

    def need(condition: bool, reason: str | None, what: str) -> None:
        if not condition:
            return
        if reason is None:
            unexplained.append(what)
        elif reason not in reasons:
            reasons.append(reason)

    edge_pre = edge.preflight.status if edge.preflight else None
    fc_pre = fc.preflight.status if fc.preflight else None
    edge_act = edge.actual.status if edge.actual else None
    fc_act = fc.actual.status if fc.actual else None
    preflight_reason = None
    if edge_pre == 204:
        preflight_reason = "PREFLIGHT_AT_EDGE"
    elif edge_pre == 403:
        preflight_reason = "PRIVATE_NETWORK" if case.private_network else "PREFLIGHT_REFUSED_403"
    actual_reason = {403: "ENFORCE", 400: "BAD_PATH"}.get(edge_act or 0)

    need(fc.verdict != edge.verdict, named[0] if named else None, "verdict")
    need(fc_pre != edge_pre, preflight_reason, "preflight status")
    need((fc.actual is None) != (edge.actual is None), None, "actual request sent")
    need(fc_act != edge_act, actual_reason, "actual status")
    fc_ran, edge_ran = list(fc.reached), list(edge.reached)
    if "OPTIONS" in fc_ran and "OPTIONS" not in edge_ran and edge_pre in (204, 403):
        need(True, preflight_reason, "preflight reached Flask")
        fc_ran.remove("OPTIONS")
    need(fc_ran != edge_ran, actual_reason, "which requests reached Flask")
    need(_vary(fc.preflight) != _vary(edge.preflight), "VARY", "preflight Vary")
    need(_vary(fc.actual) != _vary(edge.actual), "VARY", "actual Vary")
    fc_pre_h, edge_pre_h = _other(fc.preflight), _other(edge.preflight)
    for name in sorted({*fc_pre_h, *edge_pre_h}):
        if fc_pre_h.get(name) == edge_pre_h.get(name):
            continue
        if edge_pre == 403:
            reason = preflight_reason
        elif name == "access-control-allow-methods" and edge_pre_h.get(name) == case.method.lower():
            reason = "METHODS_STAR"
        elif name in ("access-control-expose-headers", "access-control-allow-headers"):
            reason = "PREFLIGHT_ONLY_HEADERS"
        else:
            reason = None
        need(True, reason, f"preflight {name}")
    fc_act_h, edge_act_h = _other(fc.actual), _other(edge.actual)
    for name in sorted({*fc_act_h, *edge_act_h}):
        if fc_act_h.get(name) == edge_act_h.get(name):
            continue
        if actual_reason is not None:
            reason: str | None = actual_reason
        else:
            reason = named[0] if named else None
        need(True, reason, f"actual {name}")
    if unexplained:
        raise AssertionError(f"{case.id}: unexplained differences: {', '.join(unexplained)}")
    for key in named:
        if key not in reasons:
            raise AssertionError(f"{case.id}: names {key} but the stacks do not differ so")
    return reasons


def _request_text(case: Case) -> str:
    parts = [f"`{case.method} {case.path}`"]
    parts.append(f"from `{case.origin}`" if case.origin else "without `Origin`")
    for name, value in case.headers:
        parts.append(f"`{name}: {value}`")
    if case.credentials:
        parts.append("with credentials")
    if case.private_network:
        parts.append("private network")
    return " ".join(parts)


def _exchange_text(exchange: Exchange | None) -> str:
    if exchange is None:
        return "not sent"
    headers = "<br>".join(f"`{line}`" for line in exchange.cors) or "no CORS headers"
    return f"**{exchange.status}**<br>{headers}"


def _short(outcome: Outcome) -> str:
    status = outcome.actual.status if outcome.actual else outcome.preflight.status  # type: ignore[union-attr]
    return f"{outcome.verdict} ({status})"


def _link(key: str) -> str:
    return f"[{key}](#{key.lower().replace('_', '-')})"


def render(results: list[Result]) -> str:
    same = sum(1 for r in results if r.flask_cors.verdict == r.edge.verdict)
    lines = [
        "# Parity with Flask-CORS",
        "",
        "<!-- Generated by `.venv/bin/python -m tests.parity.generate`; do not edit by hand."
        " tests/parity/test_parity.py regenerates it and fails if it differs. -->",
        "",
        "The same request matrix is sent to two stacks built on the unmodified legacy app "
        "(`examples/legacy_app.py`):",
        "",
        "- **Flask-CORS**: the app wrapped with `flask_cors.CORS(app, resources=...)` "
        "(`tests/parity/flask_cors_app.py`) under gunicorn;",
        "- **cors-edge**: cors-edge with the equivalent policy (`PARITY_POLICY` in "
        "`tests/parity/matrix.py`: the suites' `tests/policies/base.yaml` with a longer read "
        "timeout) in front of the plain app under gunicorn.",
        "",
        f"Observed with Flask-CORS {version('flask-cors')} on Flask {version('flask')}; both "
        "configurations are listed at the end.",
        "",
        "Each case is sent the way a browser sends it: a CORS preflight first when the Fetch "
        "standard requires one (the actual request only if the preflight passes), then the "
        "actual request, with `Cookie` when the page fetches with `credentials: 'include'`. "
        "The verdict is computed by the Fetch standard's CORS check and CORS-preflight check "
        "(`cors_check` and `preflight_check` in `tests/parity/matrix.py`): **readable** (the "
        "page's `fetch()` resolves and it can read the response), **blocked** (the promise "
        "rejects), **blocked (preflight)** (rejected before the actual request is sent), or "
        "**not CORS** (no `Origin`: curl, servers, same-origin navigations). "
        '"Flask ran" lists the requests the legacy app itself logged (its '
        "`LEGACY_APP_REQUEST_LOG`).",
        "",
        f"{len(results)} cases; the browser verdict is the same in {same} and differs in "
        f"{len(results) - same}. Every difference, in headers, status, verdict or whether "
        "Flask ran, is explained; the reasons are listed at the end.",
        "",
        "## Summary",
        "",
        "| # | case | request | Flask-CORS | cors-edge | Flask ran (Flask-CORS / cors-edge) "
        "| differences |",
        "|---|---|---|---|---|---|---|",
    ]
    used: list[str] = []
    for number, result in enumerate(results, 1):
        reasons = explain(result)
        used.extend(key for key in reasons if key not in used)
        fc_ran = ", ".join(result.flask_cors.reached) or "-"
        edge_ran = ", ".join(result.edge.reached) or "-"
        marker = "**verdict differs**: " if result.flask_cors.verdict != result.edge.verdict else ""
        why = marker + ", ".join(_link(key) for key in reasons)
        lines.append(
            f"| {number} | `{result.case.id}` | {_request_text(result.case)} "
            f"| {_short(result.flask_cors)} | {_short(result.edge)} | {fc_ran} / {edge_ran} "
            f"| {why or 'none'} |"
        )
    lines += ["", "## Cases in detail", ""]
    for number, result in enumerate(results, 1):
        fc, edge = result.flask_cors, result.edge
        lines += [
            f"### {number}. {result.case.id}",
            "",
            _request_text(result.case),
            "",
            "| | Flask-CORS | cors-edge |",
            "|---|---|---|",
        ]
        if fc.preflight or edge.preflight:
            lines.append(
                f"| preflight | {_exchange_text(fc.preflight)} | {_exchange_text(edge.preflight)} |"
            )
        lines.append(f"| actual | {_exchange_text(fc.actual)} | {_exchange_text(edge.actual)} |")
        lines.append(f"| browser verdict | {fc.verdict} | {edge.verdict} |")
        lines.append(
            f"| Flask ran | {', '.join(fc.reached) or '-'} | {', '.join(edge.reached) or '-'} |"
        )
        reasons = explain(result)
        lines.append("")
        if reasons:
            lines.append("Differences: " + ", ".join(_link(key) for key in reasons) + ".")
        else:
            lines.append("No difference.")
        lines.append("")
    lines += ["## Reasons for the differences", ""]
    for key in used:
        lines += [f"### {key}", "", REASONS[key], ""]
    lines += star_with_credentials()
    lines += [
        "## The two configurations",
        "",
        "cors-edge (`PARITY_POLICY`):",
        "",
        "```yaml",
        PARITY_POLICY.strip(),
        "```",
        "",
        "Flask-CORS (`RESOURCES` in `tests/parity/resources.py`, passed to "
        "`CORS(app, resources=RESOURCES)`):",
        "",
        "```json",
        json.dumps(RESOURCES, indent=2),
        "```",
    ]
    return "\n".join(lines).rstrip() + "\n"


def star_with_credentials() -> list[str]:
    """Configuration-time difference, observed live: ``origins: "*"`` with credentials."""
    app = Flask("parity_star_with_credentials")
    app.add_url_rule("/me", "me", lambda: "alice")
    CORS(app, resources={r"/me": {"origins": "*", "supports_credentials": True}})
    origin = "https://evil.test"
    response = app.test_client().get("/me", headers={"Origin": origin})
    headers = {name.lower(): value for name, value in response.headers.items()}
    shown = sorted(
        f"`{name}: {value}`"
        for name, value in response.headers.items()
        if name.lower().startswith("access-control-") or name.lower() == "vary"
    )
    verdict = READABLE if cors_check(origin, True, headers) else BLOCKED
    policy = 'routes:\n  - path: /me\n    origins: "*"\n    supports_credentials: true\n'
    try:
        load_policy_text(policy, "policy.yaml")
        refused = "loaded (unexpected)"
    except PolicyError as error:
        refused = f"`{error}`"
    return [
        '## Not in the matrix: `origins: "*"` with credentials',
        "",
        'Deliberate difference, at configuration time. Given `origins: "*"` with '
        "`supports_credentials: true`, Flask-CORS reflects any origin and allows credentials "
        f"(observed for a credentialed `GET` from `{origin}`: {', '.join(shown)}; browser "
        f"verdict: **{verdict}**), so every site can read the user's data. cors-edge refuses "
        f"to load such a policy: {refused}",
        "",
    ]
