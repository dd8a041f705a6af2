"""cors-edge proven in a real browser: Chromium's own CORS verdict on pages that fetch it.

Every case loads a page from one of three origins and runs ``fetch()`` against
cors-edge in that page. The verdict is the browser's: either the promise resolves and
the script reads the status, the body and exactly the headers CORS exposes to it, or it
rejects with ``TypeError: Failed to fetch``. Each request carries a unique
``case=<id>`` query, so the test also checks what reached cors-edge (its JSON access
log: preflight or not, and its decision) and what reached Flask (the app's own request
log) -- a refused cross-site POST must never run legacy code.

Page origins (see conftest.py):
  allowed  http://127.0.0.1:P1  listed on /api/** and /echo
  sibling  http://127.0.0.1:P2  same site as allowed, different port, not listed
  foreign  http://localhost:P1  another site, not listed
"""

from __future__ import annotations

import http.client
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext

from tests.browser.conftest import Origins
from tests.support import Edge, Upstream

# Decisions after which cors-edge sends the request on to Flask.
FORWARDED = {"allowed", "unenforced", "same_origin", "no_origin", "no_route"}
FAILED = "TypeError: Failed to fetch"

FETCH_JS = """
async ({url, init, names}) => {
  try {
    const response = await fetch(url, init);
    const body = await response.text();
    const headers = {};
    for (const name of names) headers[name] = response.headers.get(name);
    return {ok: true, status: response.status, body, headers};
  } catch (error) {
    return {ok: false, error: `${error.name}: ${error.message}`};
  }
}
"""

# The cookie /api/login sets, as Chromium will store it: Secure is required with
# SameSite=None, which the legacy app omits (see test_login_cookie_passes_through).
SESSION_COOKIE = {
    "name": "session",
    "value": "legacy-session-42",
    "domain": "127.0.0.1",
    "path": "/",
    "secure": True,
    "sameSite": "None",
}

JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Case:
    id: str
    page: str  # allowed | sibling | foreign
    method: str
    path: str
    read: int | None  # status the page reads, or None: fetch() rejects
    edge: tuple[str, ...]  # "METHOD decision" lines cors-edge logs for the case, in order
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    credentials: str = "same-origin"  # fetch() default; "include" sends the cookie cross-origin
    cookie: bool = False  # the browser holds the session cookie for 127.0.0.1
    body_has: str | None = None
    visible: tuple[str, ...] = ()  # response headers the page can read
    hidden: tuple[str, ...] = ()  # response headers it must not see
    via: str = "live"  # live edge, or "dead": the edge whose upstream port is closed

    def __str__(self) -> str:
        return self.id


def C(*args: Any, **kwargs: Any) -> Any:
    return pytest.param(Case(*args, **kwargs), id=args[0])


OK, REF = "preflight_ok", "preflight_refused"
CASES = [
    # --- simple requests from the allowed page ------------------------------------
    C("allowed-get-items", "allowed", "GET", "/api/items", 200, ("GET allowed",),
      body_has="widget", visible=("X-Total-Count", "Content-Type"),
      hidden=("X-Internal-Trace",)),
    C("allowed-get-item", "allowed", "GET", "/api/items/1", 200, ("GET allowed",),
      body_has="widget"),
    C("allowed-get-404", "allowed", "GET", "/api/items/999", 404, ("GET allowed",),
      body_has="no such item"),
    C("allowed-head", "allowed", "HEAD", "/api/items", 200, ("HEAD allowed",),
      visible=("X-Total-Count",)),
    C("allowed-post-text-plain", "allowed", "POST", "/api/echo", 200, ("POST allowed",),
      headers={"Content-Type": "text/plain"}, body="hello", body_has='"method":"POST"'),
    C("allowed-post-form", "allowed", "POST", "/api/echo", 200, ("POST allowed",),
      headers={"Content-Type": "application/x-www-form-urlencoded"}, body="a=1",
      body_has="a=1"),
    # --- preflighted requests from the allowed page -------------------------------
    C("allowed-post-json", "allowed", "POST", "/api/echo", 200,
      (f"OPTIONS {OK}", "POST allowed"), headers=JSON, body='{"name":"x"}',
      body_has='{\\"name\\":\\"x\\"}'),
    C("allowed-put-json", "allowed", "PUT", "/api/echo", 200,
      (f"OPTIONS {OK}", "PUT allowed"), headers=JSON, body="{}", body_has='"method":"PUT"'),
    C("allowed-delete", "allowed", "DELETE", "/api/echo", 200,
      (f"OPTIONS {OK}", "DELETE allowed"), body_has='"method":"DELETE"'),
    C("allowed-authorization", "allowed", "GET", "/api/echo", 200,
      (f"OPTIONS {OK}", "GET allowed"), headers={"Authorization": "Bearer t0k3n"},
      body_has="Bearer t0k3n"),
    C("allowed-patch-refused", "allowed", "PATCH", "/api/echo", None, (f"OPTIONS {REF}",)),
    C("allowed-custom-header-refused", "allowed", "GET", "/api/echo", None,
      (f"OPTIONS {REF}",), headers={"X-Custom": "1"}),
    C("allowed-auth-and-custom-refused", "allowed", "GET", "/api/echo", None,
      (f"OPTIONS {REF}",), headers={"Authorization": "Bearer t", "X-Requested-With": "x"}),
    # --- credentials --------------------------------------------------------------
    C("allowed-me-cookie", "allowed", "GET", "/api/me", 200, ("GET allowed",),
      credentials="include", cookie=True, body_has="alice"),
    C("allowed-me-cookie-omitted", "allowed", "GET", "/api/me", 401, ("GET allowed",),
      credentials="omit", cookie=True, body_has='"user":null'),
    C("allowed-me-no-cookie", "allowed", "GET", "/api/me", 401, ("GET allowed",),
      credentials="include", body_has='"user":null'),
    C("allowed-me-cookie-with-auth", "allowed", "GET", "/api/me", 200,
      (f"OPTIONS {OK}", "GET allowed"), credentials="include", cookie=True,
      headers={"Authorization": "Bearer t"}, body_has="alice"),
    C("allowed-login-include", "allowed", "POST", "/api/login", 200, ("POST allowed",),
      credentials="include", body_has="logged_in"),
    C("allowed-public-include", "allowed", "GET", "/public/status", None, ("GET allowed",),
      credentials="include", cookie=True),
    C("allowed-reflected-include", "allowed", "GET", "/v1/public/info", None,
      ("GET allowed",), credentials="include", cookie=True),
    C("allowed-echo-include", "allowed", "GET", "/echo", None, ("GET allowed",),
      credentials="include", cookie=True),
    C("foreign-me-include", "foreign", "GET", "/api/me", None, ("GET blocked",),
      credentials="include", cookie=True),
    # --- the legacy route with its own wrong ACAO * + ACAC true --------------------
    C("allowed-legacy-cors", "allowed", "GET", "/api/legacy-cors", 200, ("GET allowed",),
      body_has="legacy"),
    C("allowed-legacy-cors-include", "allowed", "GET", "/api/legacy-cors", 200,
      ("GET allowed",), credentials="include", cookie=True, body_has="legacy"),
    C("foreign-legacy-cors", "foreign", "GET", "/api/legacy-cors", None, ("GET blocked",)),
    C("sibling-legacy-cors", "sibling", "GET", "/api/legacy-cors", None, ("GET blocked",)),
    # --- refused origins (enforce: true): answered 403 at the edge ----------------
    C("foreign-get-items", "foreign", "GET", "/api/items", None, ("GET blocked",)),
    C("sibling-get-items", "sibling", "GET", "/api/items", None, ("GET blocked",)),
    C("foreign-post-items-simple", "foreign", "POST", "/api/items", None, ("POST blocked",),
      headers={"Content-Type": "text/plain"}, body='{"name":"csrf"}'),
    C("sibling-post-login-simple", "sibling", "POST", "/api/login", None, ("POST blocked",),
      credentials="include"),
    C("foreign-post-json-refused", "foreign", "POST", "/api/echo", None, (f"OPTIONS {REF}",),
      headers=JSON, body="{}"),
    C("foreign-delete-refused", "foreign", "DELETE", "/api/items/1", None,
      (f"OPTIONS {REF}",)),
    # --- "*" routes ---------------------------------------------------------------
    C("allowed-public-status", "allowed", "GET", "/public/status", 200, ("GET allowed",),
      body_has='"status":"ok"'),
    C("foreign-public-status", "foreign", "GET", "/public/status", 200, ("GET allowed",),
      body_has='"status":"ok"'),
    C("sibling-public-status", "sibling", "GET", "/public/status", 200, ("GET allowed",)),
    C("foreign-public-post-json", "foreign", "POST", "/public/echo", 200,
      (f"OPTIONS {OK}", "POST allowed"), headers=JSON, body="{}", body_has='"method":"POST"'),
    C("foreign-public-put-refused", "foreign", "PUT", "/public/echo", None,
      (f"OPTIONS {REF}",)),
    C("foreign-public-custom-header-refused", "foreign", "GET", "/public/echo", None,
      (f"OPTIONS {REF}",), headers={"X-Custom": "1"}),
    C("foreign-public-authorization-refused", "foreign", "GET", "/public/status", None,
      (f"OPTIONS {REF}",), headers={"Authorization": "Bearer t"}),
    C("foreign-reflected-info", "foreign", "GET", "/v1/public/info", 200, ("GET allowed",),
      body_has='"public":true'),
    # --- enforce: false route with methods "*" and allow_headers "*" ---------------
    C("allowed-echo-patch-any-header", "allowed", "PATCH", "/echo", 200,
      (f"OPTIONS {OK}", "PATCH allowed"), headers={"X-Anything": "42"},
      body_has='"X-Anything":"42"'),
    C("foreign-echo-post-unenforced", "foreign", "POST", "/echo", None,
      ("POST unenforced",), headers={"Content-Type": "text/plain"}, body="x"),
    C("foreign-echo-put-refused", "foreign", "PUT", "/echo", None, (f"OPTIONS {REF}",)),
    # --- paths no route covers: forwarded untouched, no CORS headers ---------------
    C("allowed-admin-users", "allowed", "GET", "/admin/users", None, ("GET no_route",)),
    C("foreign-admin-users", "foreign", "GET", "/admin/users", None, ("GET no_route",)),
    C("allowed-admin-delete", "allowed", "DELETE", "/admin/users", None,
      ("OPTIONS no_route",)),
    # --- path normalisation: a looser route must not be borrowed -------------------
    C("foreign-dotdot-encoded-slash", "foreign", "GET", "/public/..%2fadmin/users", None,
      ("GET bad_path",)),
    C("foreign-dots-encoded", "foreign", "GET", "/public/%2e%2e/admin/users", None,
      ("GET no_route",)),  # the browser itself resolves %2e%2e: /admin/users arrives
    C("foreign-dots-and-slash-encoded", "foreign", "GET", "/public/%2E%2E%2Fadmin/users",
      None, ("GET bad_path",)),
    C("foreign-backslash", "foreign", "GET", "/public/..\\admin/users", None,
      ("GET no_route",)),  # the URL parser turns \ into / and resolves ..
    C("foreign-double-slash", "foreign", "GET", "/public//../admin/users", 404,
      ("GET allowed",), body_has="Not Found"),  # arrives as /public/admin/users: Flask 404s
    # --- errors readable by an allowed page ----------------------------------------
    C("allowed-boom-500", "allowed", "GET", "/api/boom", 500, ("GET allowed",)),
    C("foreign-boom-500", "foreign", "GET", "/api/boom", None, ("GET blocked",)),
    C("allowed-upstream-down-502", "allowed", "GET", "/api/items", 502, ("GET allowed",),
      body_has="upstream unavailable", via="dead"),
    C("allowed-upstream-down-502-preflighted", "allowed", "PUT", "/api/echo", 502,
      (f"OPTIONS {OK}", "PUT allowed"), headers=JSON, body="{}", via="dead"),
    C("foreign-upstream-down", "foreign", "GET", "/api/items", None, ("GET blocked",),
      via="dead"),
]  # fmt: skip


def _logged(edge: Edge, tag: str) -> list[str]:
    return [
        f"{entry['method']} {entry['decision']}"
        for entry in edge.access_log()
        if str(entry["path"]).endswith(tag)
    ]


def _sentinel(edge: Edge) -> None:
    """A request of our own, answered by the edge itself, and its access-log line: one
    event loop logs in order on one pipe, so every line of requests answered before it
    (the case's, which the browser has all seen answered) is in once it is."""
    tag = "sentinel-" + uuid.uuid4().hex
    connection = http.client.HTTPConnection("127.0.0.1", edge.port, timeout=15)
    try:
        headers = {"Origin": "http://sentinel.invalid", "Access-Control-Request-Method": "GET"}
        connection.request("OPTIONS", f"/api/{tag}", headers=headers)
        connection.getresponse().read()
    finally:
        connection.close()
    edge.stdout.wait_for(tag)


def wait_for_log(edge: Edge, tag: str, count: int, timeout: float = 15.0) -> list[str]:
    """The access-log lines of one case, as "METHOD decision"; waits for ``count`` of them
    (the cap is a safety net only), then for a sentinel, so a stray extra line is caught."""
    deadline = time.monotonic() + timeout
    while len(_logged(edge, tag)) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    _sentinel(edge)
    return _logged(edge, tag)


def open_page(browser: Browser, origin: str, cookie: bool) -> tuple[BrowserContext, Any]:
    context = browser.new_context()
    if cookie:
        context.add_cookies([SESSION_COOKIE])  # type: ignore[list-item]
    page = context.new_page()
    page.goto(origin + "/page")
    return context, page


def browser_fetch(page: Any, url: str, init: dict[str, Any], names: list[str]) -> Any:
    return page.evaluate(FETCH_JS, {"url": url, "init": init, "names": names})


def test_case_table_is_big_enough() -> None:
    assert len(CASES) >= 40
    assert len({param.id for param in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES)
def test_browser_verdict(
    case: Case, chromium: Browser, origins: Origins, edges: dict[str, Edge], upstream: Upstream
) -> None:
    edge = edges[case.via]
    tag = f"case={case.id}-{uuid.uuid4().hex[:8]}"
    url = f"{edge.url}{case.path}?{tag}"
    init: dict[str, Any] = {"method": case.method, "credentials": case.credentials}
    if case.headers:
        init["headers"] = case.headers
    if case.body is not None:
        init["body"] = case.body
    names = [*case.visible, *case.hidden]
    context, page = open_page(chromium, origins.by_name(case.page), case.cookie)
    try:
        verdict = browser_fetch(page, url, init, names)
    finally:
        context.close()

    # The browser's verdict.
    if case.read is None:
        assert verdict == {"ok": False, "error": FAILED}, verdict
    else:
        assert verdict["ok"], verdict
        assert verdict["status"] == case.read, verdict
        if case.body_has is not None:
            assert case.body_has in verdict["body"], verdict
        for name in case.visible:
            assert verdict["headers"][name], (name, verdict)
        for name in case.hidden:
            assert verdict["headers"][name] is None, (name, verdict)

    # What reached cors-edge, and what it decided.
    logged = wait_for_log(edge, tag, len(case.edge))
    assert tuple(logged) == case.edge, logged

    # What reached Flask: exactly the requests cors-edge says it forwarded.
    if case.via == "live":
        forwarded = [line.split()[0] for line in logged if line.split()[1] in FORWARDED]
        reached = [
            str(entry["method"])
            for entry in upstream.requests()
            if str(entry["raw_uri"]).endswith(tag)
        ]
        assert reached == forwarded, (reached, forwarded)


PREFLIGHT_CACHE_CASES = [
    # route max_age, path, expected preflights for two identical requests in one page
    pytest.param("/api/echo", "PUT", 1, id="max-age-600-one-preflight"),
    pytest.param("/v1/public/info", "GET", 2, id="max-age-0-two-preflights"),
]


@pytest.mark.parametrize(("path", "method", "preflights"), PREFLIGHT_CACHE_CASES)
def test_preflight_cache(
    path: str,
    method: str,
    preflights: int,
    chromium: Browser,
    origins: Origins,
    edges: dict[str, Edge],
) -> None:
    """Within max_age a second identical request sends no new preflight (counted at the edge)."""
    edge = edges["live"]
    tag = f"case=cache-{uuid.uuid4().hex[:8]}"
    url = f"{edge.url}{path}?{tag}"
    init = {"method": method, "headers": JSON}
    context, page = open_page(chromium, origins.allowed, cookie=False)
    try:
        first = browser_fetch(page, url, init, [])
        second = browser_fetch(page, url, init, [])
    finally:
        context.close()
    assert first["ok"] and first["status"] == 200, first
    assert second["ok"] and second["status"] == 200, second
    logged = wait_for_log(edge, tag, preflights + 2)
    assert logged.count(f"OPTIONS {OK}") == preflights, logged
    assert logged.count(f"{method} allowed") == 2, logged


def test_login_cookie_passes_through(
    chromium: Browser, origins: Origins, edges: dict[str, Edge]
) -> None:
    """/api/login's Set-Cookie reaches Chromium intact; Chromium, not CORS, declines it.

    The page reads the credentialed login response (cors-edge's exact ACAO and
    ACAC: true). The legacy app sets ``SameSite=None`` without ``Secure``, which
    Chromium refuses to store (reason ``SameSiteNoneInsecure``) whatever the proxy
    does, so the credential cases above hold the cookie the way Chromium would
    store a correct one (``Secure; SameSite=None``) and prove it is sent and read.
    """
    edge = edges["live"]
    context, page = open_page(chromium, origins.allowed, cookie=False)
    blocked: list[dict[str, Any]] = []
    try:
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.on(
            "Network.responseReceivedExtraInfo",
            lambda event: blocked.extend(event.get("blockedCookies") or []),
        )
        verdict = browser_fetch(
            page,
            f"{edge.url}/api/login?case=login-cookie",
            {"method": "POST", "credentials": "include"},
            [],
        )
        deadline = time.monotonic() + 15  # a safety net: the CDP event is what we wait for
        while not blocked and time.monotonic() < deadline:
            page.wait_for_timeout(20)
        stored = context.cookies()
    finally:
        context.close()
    assert verdict["ok"] and verdict["status"] == 200, verdict
    assert "logged_in" in verdict["body"], verdict
    assert [cookie["cookieLine"] for cookie in blocked] == [
        "session=legacy-session-42; Path=/; SameSite=None"
    ], blocked
    assert blocked[0]["blockedReasons"] == ["SameSiteNoneInsecure"], blocked
    assert stored == []
