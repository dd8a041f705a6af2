"""`cors-edge probe` agrees with Chromium, on servers that are not cors-edge.

Three real servers do CORS their own way (tests/browser/probe_servers.py): Flask-CORS
under gunicorn, Starlette's CORSMiddleware under uvicorn, Falcon's CORSMiddleware under
gunicorn; plus a hand-rolled Flask view for answers no library gives. For every case a
real headless Chromium runs the fetch() from a page at the case's origin (one page per
origin, all of that origin's fetches in one page.evaluate), and the probe runs the same
fetch against the same server. Chromium's verdict is whatever Chromium did in this run:
nothing here says which cases pass.
"""

from __future__ import annotations

import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
from playwright.sync_api import Browser

from proxy.browser import needs_preflight
from proxy.probe import ProbeResult, probe
from tests.support import REPO, LineCollector, Upstream, _stop, start_upstream

APP = "tests.browser.probe_servers"
J = (("Content-Type", "application/json"),)
TOKEN = (("X-Token", "t"),)
AUTH = (("Authorization", "Bearer t"),)


@dataclass(frozen=True)
class Case:
    id: str
    server: str  # F flask, S starlette, N falcon, P the page's own server
    path: str  # "{id}" is replaced; no query
    page: str = "page"  # page (the allowed origin) | other | null
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    credentials: bool = False
    to: str | None = None  # redirect target, "{F}/..." style
    code: int = 302
    h: tuple[str, ...] = ()  # /manual: headers on every answer ("Name:value")
    p: tuple[str, ...] = ()  # /manual: headers on the preflight only
    ps: int | None = None  # /manual: the preflight's status
    tags: frozenset[str] = field(default_factory=frozenset)


A = "Access-Control-Allow-Origin:{PAGE}"
ACAC = "Access-Control-Allow-Credentials:true"
STAR_CREDS = frozenset({"star-creds"})
MISSING_METHOD = frozenset({"missing-method"})
CHROMIUM_ONLY = frozenset({"chromium-differs"})

CASES = [
    # --- Flask-CORS -------------------------------------------------------------------
    Case("f-open-get", "F", "/fc/open/{id}"),
    Case("f-open-put-json", "F", "/fc/open/{id}", method="PUT", headers=J),
    Case("f-open-creds", "F", "/fc/open/{id}", credentials=True),
    Case("f-creds-get", "F", "/fc/creds/{id}", credentials=True),
    Case("f-creds-delete", "F", "/fc/creds/{id}", method="DELETE", headers=TOKEN, credentials=True),
    Case("f-creds-other", "F", "/fc/creds/{id}", page="other", credentials=True),
    Case("f-strict-put", "F", "/fc/strict/{id}", method="PUT", tags=MISSING_METHOD),
    Case("f-strict-post-json", "F", "/fc/strict/{id}", method="POST", headers=J),
    Case("f-strict-post-token", "F", "/fc/strict/{id}", method="POST", headers=TOKEN),
    Case("f-wild-creds", "F", "/fc/wild/{id}", credentials=True, tags=STAR_CREDS),
    Case("f-wild-get", "F", "/fc/wild/{id}"),
    Case("f-starcreds", "F", "/fc/starcreds/{id}", page="other", credentials=True, tags=STAR_CREDS),
    Case(
        "f-starcreds-put",
        "F",
        "/fc/starcreds/{id}",
        page="other",
        method="PUT",
        headers=TOKEN,
        credentials=True,
        tags=STAR_CREDS,
    ),
    Case("f-open-null", "F", "/fc/open/{id}", page="null"),
    # --- hand-rolled answers (Flask, no library) ---------------------------------------
    Case(
        "m-star-headers-authorization",
        "F",
        "/manual/{id}",
        method="PUT",
        headers=AUTH,
        h=("Access-Control-Allow-Origin:*",),
        p=("Access-Control-Allow-Methods:PUT", "Access-Control-Allow-Headers:*"),
        tags=CHROMIUM_ONLY,
    ),
    Case(
        "m-star-headers-authorization-creds",
        "F",
        "/manual/{id}",
        method="PUT",
        headers=AUTH,
        credentials=True,
        h=(A, ACAC),
        p=("Access-Control-Allow-Methods:PUT", "Access-Control-Allow-Headers:*"),
    ),
    Case(
        "m-star-methods-creds",
        "F",
        "/manual/{id}",
        method="PATCH",
        credentials=True,
        h=(A, ACAC),
        p=("Access-Control-Allow-Methods:*",),
        tags=STAR_CREDS | MISSING_METHOD,
    ),
    Case("m-trailing-slash", "F", "/manual/{id}", h=("Access-Control-Allow-Origin:{PAGE}/",)),
    Case("m-two-values", "F", "/manual/{id}", h=(A, A)),
    Case("m-upper-case", "F", "/manual/{id}", h=("Access-Control-Allow-Origin:{PAGE_UPPER}",)),
    Case(
        "m-creds-True",
        "F",
        "/manual/{id}",
        credentials=True,
        h=(A, "Access-Control-Allow-Credentials:True"),
    ),
    Case(
        "m-patch-lower-listed-upper",
        "F",
        "/manual/{id}",
        method="patch",
        h=(A,),
        p=("Access-Control-Allow-Methods:PATCH",),
        tags=MISSING_METHOD,
    ),
    # gunicorn refuses a lower-case method line with 400, after the preflight passed
    Case(
        "m-patch-lower-listed-lower",
        "F",
        "/manual/{id}",
        method="patch",
        h=(A,),
        p=("Access-Control-Allow-Methods:patch",),
    ),
    Case(
        "m-preflight-404",
        "F",
        "/manual/{id}",
        method="PUT",
        h=(A,),
        p=("Access-Control-Allow-Methods:PUT",),
        ps=404,
    ),
    Case(
        "m-preflight-redirect",
        "F",
        "/manual/{id}",
        method="PUT",
        h=(A, "Location:/elsewhere"),
        p=("Access-Control-Allow-Methods:PUT",),
        ps=307,
    ),
    Case(
        "m-bad-allow-headers",
        "F",
        "/manual/{id}",
        method="PUT",
        headers=TOKEN,
        h=(A,),
        p=("Access-Control-Allow-Methods:PUT", "Access-Control-Allow-Headers:x-token; x-b"),
    ),
    Case("m-null-null", "F", "/manual/{id}", page="null", h=("Access-Control-Allow-Origin:null",)),
    Case("m-null-star", "F", "/manual/{id}", page="null", h=("Access-Control-Allow-Origin:*",)),
    Case("m-null-page", "F", "/manual/{id}", page="null", h=(A,)),
    # --- redirects --------------------------------------------------------------------
    Case("r-flask-to-starlette-star", "F", "/fc/open/{id}", to="{S}/open/{id}-b"),
    Case("r-flask-to-starlette-listed", "F", "/fc/open/{id}", to="{S}/creds/{id}-b"),
    Case("r-flask-to-flask", "F", "/fc/open/{id}", to="{F}/fc/open/{id}-b"),
    Case(
        "r-flask-307-put-to-starlette",
        "F",
        "/fc/open/{id}",
        method="PUT",
        headers=J,
        to="{S}/starcreds/{id}-b",
        code=307,
    ),
    Case("r-manual-without-cors", "F", "/manual/{id}", to="{S}/open/{id}-b", code=302),
    Case(
        "r-same-origin-to-flask-creds", "P", "/go/{id}", to="{F}/fc/creds/{id}-b", credentials=True
    ),
    Case("r-same-origin-plain", "P", "/{id}"),
    Case(
        "r-same-origin-to-starlette-creds", "P", "/go/{id}", to="{S}/creds/{id}-b", credentials=True
    ),
    Case(
        "r-creds-to-star",
        "F",
        "/fc/creds/{id}",
        credentials=True,
        to="{S}/starcreds/{id}-b",
        tags=STAR_CREDS,
    ),
    Case("r-falcon-to-flask", "N", "/open/items/{id}", to="{F}/fc/open/{id}-b"),
    Case(
        "r-authorization-dropped-cross-origin",
        "F",
        "/manual/{id}",
        headers=AUTH,
        h=(A, "Location:{S}/open/{id}-b"),
        p=("Access-Control-Allow-Headers:authorization",),
        to="{S}/open/{id}-b",
    ),
    Case(
        "r-303-post-becomes-get",
        "F",
        "/fc/open/{id}",
        method="POST",
        headers=J,
        to="{S}/open/{id}-b",
        code=303,
    ),
    # --- which requests are CORS-safelisted (Starlette /open refuses Range preflights) --
    Case("s-range-safelisted", "S", "/open/{id}", headers=(("Range", "bytes=0-5"),)),
    Case("s-range-suffix", "S", "/open/{id}", headers=(("Range", "bytes=-5"),)),
    Case(
        "s-text-plain-post",
        "S",
        "/open/{id}",
        method="POST",
        headers=(("Content-Type", "text/plain;charset=UTF-8"),),
    ),
    # /manual answers preflights without Access-Control-Allow-Headers: a preflight means blocked
    Case(
        "m-language-underscore",
        "F",
        "/manual/{id}",
        headers=(("Accept-Language", "en_US"),),
        h=(A,),
    ),
    Case(
        "m-language-ok",
        "F",
        "/manual/{id}",
        headers=(("Accept-Language", "en-US,fr;q=0.5"),),
        h=(A,),
    ),
    Case("m-accept-brace", "F", "/manual/{id}", headers=(("Accept", "text/{x}"),), h=(A,)),
    Case("m-content-type-json", "F", "/manual/{id}", method="POST", headers=J, h=(A,)),
    Case("m-credentials-twice", "F", "/manual/{id}", credentials=True, h=(A, ACAC, ACAC)),
    Case("m-star-and-origin", "F", "/manual/{id}", h=("Access-Control-Allow-Origin:*", A)),
    Case(
        "m-put-listed-lower",
        "F",
        "/manual/{id}",
        method="PUT",
        h=(A,),
        p=("Access-Control-Allow-Methods:put",),
        tags=MISSING_METHOD,
    ),
    Case(
        "m-headers-listed-upper",
        "F",
        "/manual/{id}",
        method="PUT",
        headers=TOKEN,
        h=(A,),
        p=("Access-Control-Allow-Methods:PUT", "Access-Control-Allow-Headers:X-TOKEN"),
    ),
    Case(
        "m-empty-list-items",
        "F",
        "/manual/{id}",
        method="PUT",
        h=(A,),
        p=("Access-Control-Allow-Methods:GET, , PUT",),
    ),
    # --- Starlette --------------------------------------------------------------------
    Case("s-open-get", "S", "/open/{id}"),
    Case("s-open-creds", "S", "/open/{id}", credentials=True, tags=STAR_CREDS),
    Case("s-open-put", "S", "/open/{id}", method="PUT", tags=MISSING_METHOD),
    Case("s-open-token", "S", "/open/{id}", headers=TOKEN),
    Case("s-creds-get", "S", "/creds/{id}", credentials=True),
    Case(
        "s-creds-patch-auth",
        "S",
        "/creds/{id}",
        method="PATCH",
        headers=TOKEN + AUTH,
        credentials=True,
    ),
    Case("s-creds-other", "S", "/creds/{id}", page="other", credentials=True),
    Case(
        "s-starcreds-get", "S", "/starcreds/{id}", page="other", credentials=True, tags=STAR_CREDS
    ),
    Case(
        "s-starcreds-put",
        "S",
        "/starcreds/{id}",
        page="other",
        method="PUT",
        credentials=True,
        tags=STAR_CREDS,
    ),
    Case("s-strict-delete", "S", "/strict/{id}", method="DELETE", tags=MISSING_METHOD),
    Case("s-strict-put-token", "S", "/strict/{id}", method="PUT", headers=TOKEN),
    Case("s-regex-page", "S", "/regex/{id}"),
    Case("s-regex-other", "S", "/regex/{id}", page="other"),
    Case("s-open-null", "S", "/open/{id}", page="null"),
    # --- Falcon -----------------------------------------------------------------------
    Case("n-open-get", "N", "/open/items/{id}"),
    Case("n-open-creds", "N", "/open/items/{id}", credentials=True, tags=STAR_CREDS),
    Case("n-open-put-json", "N", "/open/items/{id}", method="PUT", headers=J),
    Case("n-ro-put", "N", "/open/ro/{id}", method="PUT", tags=MISSING_METHOD),
    Case("n-creds-get", "N", "/creds/items/{id}", credentials=True),
    Case("n-creds-other", "N", "/creds/items/{id}", page="other", credentials=True),
    Case(
        "n-starcreds-other",
        "N",
        "/starcreds/items/{id}",
        page="other",
        credentials=True,
        tags=STAR_CREDS,
    ),
    Case(
        "n-creds-delete-token",
        "N",
        "/creds/items/{id}",
        method="DELETE",
        headers=TOKEN,
        credentials=True,
    ),
    Case("n-open-null", "N", "/open/items/{id}", page="null"),
]

# nginx, the usual copy-pasted CORS snippets, when this machine has it (a fresh clone
# may not): extra cases, never counted toward the 40.
NGINX = shutil.which("nginx")
NGINX_CASES = [
    Case("x-echo-creds", "X", "/nx/echo/{id}", credentials=True),
    Case("x-echo-put-json", "X", "/nx/echo/{id}", method="PUT", headers=J, credentials=True),
    Case("x-echo-patch", "X", "/nx/echo/{id}", method="PATCH", tags=MISSING_METHOD),
    Case("x-echo-token", "X", "/nx/echo/{id}", method="PUT", headers=TOKEN),
    Case("x-star-get", "X", "/nx/star/{id}"),
    Case("x-star-creds", "X", "/nx/star/{id}", credentials=True, tags=STAR_CREDS),
    Case("x-star-null", "X", "/nx/star/{id}", page="null"),
    Case("x-404-without-always", "X", "/nx/missing/{id}"),
]
if NGINX:
    CASES += NGINX_CASES

_NGINX_CONF = """
daemon off;
master_process off;
pid {tmp}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location /nx/echo/ {{
            if ($request_method = OPTIONS) {{
                add_header Access-Control-Allow-Origin $http_origin;
                add_header Access-Control-Allow-Methods "GET, POST, PUT, DELETE";
                add_header Access-Control-Allow-Headers "Content-Type, Authorization";
                add_header Access-Control-Allow-Credentials true;
                return 204;
            }}
            add_header Access-Control-Allow-Origin $http_origin always;
            add_header Access-Control-Allow-Credentials true always;
            return 200 "nginx echo";
        }}
        location /nx/star/ {{
            add_header Access-Control-Allow-Origin * always;
            return 200 "nginx star";
        }}
        location /nx/missing/ {{
            add_header Access-Control-Allow-Origin *;  # no `always`: not on a 404
            return 404;
        }}
    }}
}}
"""


def _start_nginx(tmp: Path) -> tuple[subprocess.Popen[str], str]:
    with socket.socket() as sock:  # nginx cannot report a port 0 it was given
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    conf = tmp / "nginx.conf"
    conf.write_text(_NGINX_CONF.format(tmp=tmp, port=port))
    process = subprocess.Popen(
        [str(NGINX), "-p", str(tmp), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30  # a safety net; the loop ends on the first connect
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                _stop(process)
                raise RuntimeError(
                    f"nginx did not start: {process.stderr.read() if process.stderr else ''}"
                ) from None
            time.sleep(0.05)


# --- the servers ----------------------------------------------------------------------


class _Page(http.server.BaseHTTPRequestHandler):
    """The blank page on every path, and /go/... redirecting to ?to= (same-origin hops)."""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        target = parse_qs(parts.query).get("to")
        if parts.path.startswith("/go/") and target:
            self.send_response(302)
            self.send_header("Location", target[0])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"<!doctype html><meta charset=utf-8><title>probe page</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _PageServer:
    def __init__(self) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class World:
    page: str  # the allowed page origin, http://localhost:P
    other: str  # another page origin, never listed
    bases: dict[str, str]  # server letter -> base URL


def _start_uvicorn(page: str) -> tuple[subprocess.Popen[str], str]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--fd", str(listener.fileno()), "--log-level", "info",
         f"{APP}:starlette_app"],
        cwd=REPO,
        env={**os.environ, "PROBE_PAGE_ORIGIN": page},
        pass_fds=(listener.fileno(),),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    listener.close()  # the child has its own copy
    try:
        LineCollector(process.stderr).wait_for("Application startup complete", timeout=30)
    except BaseException:
        _stop(process)
        raise
    return process, f"http://127.0.0.1:{port}"


def _start_wsgi(tmp: Any, app: str, page: str) -> Upstream:
    previous = os.environ.get("PROBE_PAGE_ORIGIN")
    os.environ["PROBE_PAGE_ORIGIN"] = page  # start_upstream passes the environment on
    try:
        return start_upstream(tmp, workers=1, threads=8, app=app)
    finally:
        if previous is None:
            os.environ.pop("PROBE_PAGE_ORIGIN", None)
        else:
            os.environ["PROBE_PAGE_ORIGIN"] = previous


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    main, other = _PageServer(), _PageServer()
    page = f"http://localhost:{main.port}"
    started: list[Upstream] = []
    uvicorn: subprocess.Popen[str] | None = None
    nginx: subprocess.Popen[str] | None = None
    try:
        flask = _start_wsgi(tmp_path_factory.mktemp("flask"), f"{APP}:flask_app", page)
        started.append(flask)
        falcon = _start_wsgi(tmp_path_factory.mktemp("falcon"), f"{APP}:falcon_app", page)
        started.append(falcon)
        uvicorn, starlette = _start_uvicorn(page)
        bases = {"F": flask.url, "N": falcon.url, "S": starlette, "P": page}
        if NGINX:
            nginx, bases["X"] = _start_nginx(tmp_path_factory.mktemp("nginx"))
        yield World(page=page, other=f"http://127.0.0.1:{other.port}", bases=bases)
    finally:
        if nginx is not None:
            _stop(nginx)
        for server in started:
            server.stop()
        if uvicorn is not None:
            _stop(uvicorn)
        main.close()
        other.close()


def case_url(case: Case, world: World) -> str:
    values = {**world.bases, "PAGE": world.page, "id": case.id}
    values["PAGE_UPPER"] = world.page.replace("localhost", "LocalHost")
    query: list[tuple[str, str]] = []
    if case.to:
        query += [("to", case.to.format(**values)), ("code", str(case.code))]
    query += [("h", value.format(**values)) for value in case.h]
    query += [("p", value.format(**values)) for value in case.p]
    if case.ps is not None:
        query.append(("ps", str(case.ps)))
    url = world.bases[case.server] + case.path.format(**values)
    return f"{url}?{urlencode(query, quote_via=quote)}" if query else url


# --- Chromium's verdicts ----------------------------------------------------------------

_FETCH_ALL = """
async (cases) => {
  const out = [];
  for (const c of cases) {
    try {
      const r = await fetch(c.url, {method: c.method, headers: c.headers, cache: 'no-store',
                                    credentials: c.credentials ? 'include' : 'same-origin'});
      await r.arrayBuffer();
      out.push({readable: true, detail: String(r.status)});
    } catch (e) {
      out.push({readable: false, detail: String(e)});
    }
  }
  return out;
}
"""
_BLOCKED = re.compile(
    r"Access to fetch at '([^']*)'(?: \(redirected from '([^']*)'\))? from origin '[^']*'"
    r" has been blocked by CORS policy: (.*)"
)


def chromium_verdicts(chromium: Browser, world: World) -> tuple[dict[str, bool], dict[str, str]]:
    """Every case run by Chromium: readable or not, and its console's reason by URL."""
    verdicts: dict[str, bool] = {}
    reasons: dict[str, str] = {}
    context = chromium.new_context()
    try:
        for page_name, origin in (("page", world.page), ("other", world.other), ("null", None)):
            cases = [case for case in CASES if case.page == page_name]
            page = context.new_page()

            def on_console(message: Any) -> None:
                match = _BLOCKED.search(message.text)
                if match:
                    reasons[match[2] or match[1]] = match[3]

            page.on("console", on_console)
            page.goto((origin or world.page) + "/")
            target: Any = page
            if origin is None:  # a sandboxed iframe: its origin is opaque, "null"
                page.set_content('<iframe sandbox="allow-scripts" srcdoc="<p>null</p>"></iframe>')
                target = page.frames[1]
            payload = [
                {"url": case_url(c, world), "method": c.method, "headers": dict(c.headers),
                 "credentials": c.credentials}
                for c in cases
            ]  # fmt: skip
            results = target.evaluate(_FETCH_ALL, payload)
            for case, result in zip(cases, results, strict=True):
                verdicts[case.id] = bool(result["readable"])
            page.close()
    finally:
        context.close()
    return verdicts, reasons


def run_probe(case: Case, world: World) -> ProbeResult:
    origin = {"page": world.page, "other": world.other, "null": "null"}[case.page]
    return probe(
        case_url(case, world),
        origin=origin,
        method=case.method,
        headers=case.headers,
        credentials=case.credentials,
        timeout=20,
    )


def test_probe_agrees_with_chromium(chromium: Browser, world: World) -> None:
    counted = [case for case in CASES if case.server in "FSN"]  # not nginx, not the page
    assert len({case.server for case in counted}) == 3 and len(counted) >= 40
    chromium_says, console = chromium_verdicts(chromium, world)
    disagreements = []
    results = {}
    for case in CASES:
        result = results[case.id] = run_probe(case, world)
        if result.readable != chromium_says[case.id]:
            url = case_url(case, world)
            disagreements.append(
                f"{case.id}: chromium {'readable' if chromium_says[case.id] else 'blocked'}"
                f" ({console.get(url, '-')}), probe {'readable' if result.readable else 'blocked'}"
                f" ({result.reason})"
            )
        chromium_reason = console.get(case_url(case, world))
        if chromium_reason is not None and result.reason != chromium_reason:
            # Chromium's console words are the probe's words for the same failure.
            disagreements.append(
                f"{case.id}: chromium {chromium_reason!r}, probe {result.reason!r}"
            )
    assert not disagreements, "\n".join(disagreements)
    assert sum(1 for case in CASES if chromium_says[case.id]) >= 15
    assert sum(1 for case in CASES if not chromium_says[case.id]) >= 15
    assert len(console) >= 15  # the reasons were compared, not skipped
    # The run must have exercised both verdicts in every kind of case the issue names.
    kinds = {
        "credentialed": [c for c in CASES if c.credentials],
        "preflighted": [c for c in CASES if needs_preflight(c.method, c.headers)],
        "star-creds": [c for c in CASES if "star-creds" in c.tags],
        "missing-method": [c for c in CASES if "missing-method" in c.tags],
        "redirect": [c for c in CASES if c.to],
        "null origin": [c for c in CASES if c.page == "null"],
    }
    for kind, cases in kinds.items():
        seen = {chromium_says[c.id] for c in cases}
        assert len(cases) >= 3, kind
        # star-creds and missing-method cases exist to be refused; the others must show both
        wanted = {False} if kind in ("star-creds", "missing-method") else {True, False}
        assert wanted <= seen, (kind, seen)
    # Where Chromium parts from the standard the probe says so.
    for case in CASES:
        if "chromium-differs" in case.tags:
            assert results[case.id].chromium_differs, case.id
