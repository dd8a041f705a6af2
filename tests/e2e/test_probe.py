"""`cors-edge probe` against real sockets: what it sends, how it follows redirects, exit codes.

The servers here record every request and answer with the headers named in the query
(h= always, p= on preflights, ps= preflight status, code= and to= for redirects), so
each test states the server's behaviour next to what it checks. Chromium's agreement
with the verdicts is tests/browser/test_probe_vs_chromium.py.
"""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest

from proxy.probe import ProbeError, probe
from tests.support import REPO

PAGE = "http://localhost:3000"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Recorder:
    server: http.server.ThreadingHTTPServer
    base: str
    seen: list[Seen] = field(default_factory=list)

    def url(self, path: str, **query: str | list[str]) -> str:
        return f"{self.base}{path}?{urlencode(query, doseq=True, quote_via=quote)}"


def _handler(recorder_list: list[Seen]) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            recorder_list.append(Seen(self.command, parts.path, dict(self.headers.items())))
            headers = list(query.get("h", []))
            if self.command == "OPTIONS":
                headers += query.get("p", [])
                status = int(query.get("ps", ["204"])[0])
            else:
                status = int(query.get("code", ["200"])[0])
                headers += [f"Location:{target}" for target in query.get("to", [])]
                if "loop" in query:
                    headers.append(f"Location:{self.path}")  # back to itself, for ever
            self.send_response(status)
            for header in headers:
                name, _, value = header.partition(":")
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def _start(host: str) -> Recorder:
    seen: list[Seen] = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(seen))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return Recorder(server, f"http://{host}:{server.server_address[1]}", seen)


@pytest.fixture
def a() -> Iterator[Recorder]:
    recorder = _start("127.0.0.1")
    yield recorder
    recorder.server.shutdown()
    recorder.server.server_close()


@pytest.fixture
def b() -> Iterator[Recorder]:
    recorder = _start("localhost")  # another origin than a's (another host, another port)
    yield recorder
    recorder.server.shutdown()
    recorder.server.server_close()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", "probe", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


ALLOW = f"Access-Control-Allow-Origin:{PAGE}"


def test_a_readable_simple_request_exits_0_and_sends_no_preflight(a: Recorder) -> None:
    result = cli(a.url("/x", h=ALLOW), "--origin", PAGE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verdict: readable" in result.stdout
    assert [(s.method, s.headers.get("Origin")) for s in a.seen] == [("GET", PAGE)]


def test_a_blocked_request_exits_1_with_the_reason_and_the_near_miss(a: Recorder) -> None:
    result = cli(
        a.url("/x", h="Access-Control-Allow-Origin:http://localhost:3001"), "--origin", PAGE
    )
    assert result.returncode == 1
    assert "verdict: blocked: The 'Access-Control-Allow-Origin' header has a value" in result.stdout
    assert (
        "note: the server allows 'http://localhost:3001'; the page's origin differs in"
        " port: 3000, allowed 3001\n" in result.stdout
    )


def test_the_preflight_carries_what_a_browser_sends(a: Recorder) -> None:
    url = a.url(
        "/x",
        h=ALLOW,
        p=["Access-Control-Allow-Methods:PUT", "Access-Control-Allow-Headers:x-b, content-type"],
    )
    result = cli(
        url, "--origin", PAGE, "--method", "put",
        "--header", "X-B: 1", "--header", "Content-Type: application/json",
        "--header", "Cookie: x=1",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
    preflight, actual = a.seen
    assert preflight.method == "OPTIONS"
    assert preflight.headers["Access-Control-Request-Method"] == "PUT"
    assert preflight.headers["Access-Control-Request-Headers"] == "content-type,x-b"
    assert preflight.headers["Origin"] == PAGE
    assert "X-B" not in preflight.headers
    assert actual.method == "PUT" and actual.headers["X-B"] == "1"
    assert "Cookie" not in actual.headers  # a forbidden header: fetch() drops it


def test_a_failed_preflight_stops_before_the_request(a: Recorder) -> None:
    result = cli(
        a.url("/x", h=ALLOW, p=["Access-Control-Allow-Methods:GET"]),
        "--origin",
        PAGE,
        "--method",
        "DELETE",
    )
    assert result.returncode == 1
    assert "Method DELETE is not allowed by Access-Control-Allow-Methods" in result.stdout
    assert [s.method for s in a.seen] == ["OPTIONS"]


def test_origin_becomes_null_after_a_cross_origin_hop_and_authorization_is_dropped(
    a: Recorder, b: Recorder
) -> None:
    target = b.url("/y", h="Access-Control-Allow-Origin:null")
    url = a.url(
        "/x", h=[ALLOW, "Access-Control-Allow-Headers:authorization"], to=target, code="302"
    )
    result = probe(url, origin=PAGE, headers=[("Authorization", "Bearer t")])
    assert result.readable, result
    assert [s.method for s in a.seen] == ["OPTIONS", "GET"]
    assert a.seen[1].headers["Authorization"] == "Bearer t"
    # b: no preflight (without Authorization the GET is simple again), Origin null
    assert [(s.method, s.headers.get("Origin")) for s in b.seen] == [("GET", "null")]
    assert "Authorization" not in b.seen[0].headers
    assert [e.kind for e in result.exchanges] == ["preflight", "redirect", "request"]


def test_a_redirect_within_the_same_server_keeps_the_origin(a: Recorder) -> None:
    url = a.url("/x", h=ALLOW, to=a.url("/y", h=ALLOW), code="307")
    result = probe(url, origin=PAGE, method="PUT", headers=[("X-A", "1")])
    assert not result.readable  # no Access-Control-Allow-Methods: the first preflight fails
    url = a.url(
        "/x",
        h=ALLOW,
        p=["Access-Control-Allow-Methods:PUT", "Access-Control-Allow-Headers:x-a"],
        to=a.url(
            "/y",
            h=ALLOW,
            p=["Access-Control-Allow-Methods:PUT", "Access-Control-Allow-Headers:x-a"],
        ),
        code="307",
    )
    a.seen.clear()
    result = probe(url, origin=PAGE, method="PUT", headers=[("X-A", "1")])
    assert result.readable, result.reason
    # a new preflight on the second URL, and the Origin stays the page's
    assert [(s.method, s.path, s.headers["Origin"]) for s in a.seen] == [
        ("OPTIONS", "/x", PAGE), ("PUT", "/x", PAGE), ("OPTIONS", "/y", PAGE), ("PUT", "/y", PAGE),
    ]  # fmt: skip


def test_a_same_origin_url_needs_no_cors_until_it_leaves_the_origin(
    a: Recorder, b: Recorder
) -> None:
    page = a.base  # the page is on a's own origin
    result = probe(a.url("/x"), origin=page, method="PUT", headers=[("X-A", "1")])
    assert result.readable
    assert [s.method for s in a.seen] == ["PUT"]  # no preflight, no CORS headers needed
    a.seen.clear()
    target = b.url(
        "/y", h=f"Access-Control-Allow-Origin:{page}", p=["Access-Control-Allow-Headers:x-a"]
    )
    result = probe(a.url("/x", to=target, code="302"), origin=page, headers=[("X-A", "1")])
    assert result.readable, result.reason
    assert "Origin" not in a.seen[0].headers  # same-origin GET
    # b is cross-origin: a preflight, and the page's own origin (a same-origin hop never taints)
    assert [(s.method, s.headers["Origin"]) for s in b.seen] == [("OPTIONS", page), ("GET", page)]


def test_303_turns_post_into_get_and_drops_the_body_headers(a: Recorder, b: Recorder) -> None:
    target = b.url("/y", h="Access-Control-Allow-Origin:*")
    url = a.url("/x", h=ALLOW, to=target, code="303")
    result = probe(url, origin=PAGE, method="POST", headers=[("Content-Type", "text/plain")])
    assert result.readable, result.reason
    assert b.seen[0].method == "GET" and "Content-Type" not in b.seen[0].headers


def test_a_redirect_without_cors_headers_is_blocked(a: Recorder, b: Recorder) -> None:
    result = probe(a.url("/x", to=b.url("/y", h="Access-Control-Allow-Origin:*")), origin=PAGE)
    assert not result.readable
    assert result.reason.startswith("No 'Access-Control-Allow-Origin' header")
    assert b.seen == []


@pytest.mark.parametrize(
    ("location", "words"),
    [
        ("ftp://example.test/", "has a disallowed scheme"),
        ("http://user:pw@127.0.0.1:1/", "contains a username and password"),
    ],
)
def test_redirects_fetch_refuses(a: Recorder, location: str, words: str) -> None:
    result = probe(a.url("/x", h=ALLOW, to=location, code="302"), origin=PAGE)
    assert not result.readable and words in result.reason


def test_a_redirect_loop_ends_after_20_redirects(a: Recorder) -> None:
    result = probe(a.url("/loop", h=ALLOW, code="302", loop="1"), origin=PAGE)
    assert not result.readable
    assert result.reason == "net::ERR_TOO_MANY_REDIRECTS"
    assert len(a.seen) == 21  # the first request and 20 redirects followed


def test_the_wildcard_authorization_difference_is_named(a: Recorder) -> None:
    url = a.url("/x", h="Access-Control-Allow-Origin:*", p=["Access-Control-Allow-Headers:*"])
    result = cli(url, "--origin", PAGE, "--header", "Authorization: Bearer t")
    assert result.returncode == 0, result.stdout  # Chromium's verdict
    assert (
        "note: Chromium lets '*' in Access-Control-Allow-Headers cover authorization"
        in result.stdout
    )


def test_json_output(a: Recorder) -> None:
    result = cli(a.url("/x", h=ALLOW), "--origin", PAGE, "--credentials", "--json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["readable"] is False and data["credentials"] is True
    assert "'Access-Control-Allow-Credentials'" in data["reason"]
    (exchange,) = data["exchanges"]
    assert exchange["kind"] == "request" and exchange["status"] == 200
    assert ["Origin", PAGE] in exchange["request_headers"]
    assert exchange["cors_check"]["ok"] is False


def test_null_origin(a: Recorder) -> None:
    assert (
        cli(a.url("/x", h="Access-Control-Allow-Origin:null"), "--origin", "null").returncode == 0
    )
    assert a.seen[0].headers["Origin"] == "null"
    assert cli(a.url("/x", h=ALLOW), "--origin", "null").returncode == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--origin", "http://localhost:3000/"), "did you mean http://localhost:3000?"),
        (("--origin", "localhost:3000"), "is not an origin"),
        (("--origin", PAGE, "--header", "X-A"), "expected 'Name: value'"),
        (("--origin", PAGE, "--method", "TRACE"), "forbidden method"),
    ],
)
def test_bad_arguments_exit_2(a: Recorder, args: tuple[str, ...], words: str) -> None:
    result = cli(a.url("/x"), *args)
    assert result.returncode == 2
    assert words in result.stderr
    assert a.seen == []


def test_an_unreachable_server_exits_2() -> None:
    result = cli(f"http://127.0.0.1:{_closed_port()}/x", "--origin", PAGE)
    assert result.returncode == 2
    assert "Connection refused" in result.stderr.replace("ConnectionRefusedError", "")
    with pytest.raises(ProbeError):
        probe("ftp://x/", origin=PAGE)
