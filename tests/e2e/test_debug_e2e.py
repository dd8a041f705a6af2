"""``serve --debug`` end to end: CORS-Edge-Decision on every answer a real edge gives.

Edge answers (204, 403, 400, 413, 431, 502, 504) and forwarded responses alike carry it,
in explain's words; it is exposed to page script where CORS headers are stamped; an
upstream's own header of that name never passes for the edge's; ``--debug`` refuses a
non-loopback listener without ``--debug-public``; ``--workers 2`` passes it on.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.http import fetch
from tests.support import REPO, Edge, EdgeFactory, Upstream, start_edge

APP = "http://localhost:3000"
EVIL = "http://127.0.0.1:3001"
API = 'route="routes[0] path /api/**"'
HEADER = "CORS-Edge-Decision"

POLICY = """
timeouts: {connect: 1, read: 1.5}
limits: {max_body_bytes: 1000, max_header_bytes: 2048}
unmatched: block
routes:
  - path: /api/**
    origins: [http://localhost:3000]
    methods: [GET, POST, PUT]
    expose_headers: [X-Total-Count]
    supports_credentials: true
  - path: /public/**
    origins: "*"
  - path: /echo
    origins: [http://localhost:3000]
    enforce: shadow
"""


@pytest.fixture(scope="module")
def debug_edges(
    tmp_path_factory: pytest.TempPathFactory, upstream: Upstream
) -> Iterator[dict[str, Edge]]:
    factory = EdgeFactory(tmp_path_factory.mktemp("debug-edge"), upstream)
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        closed_port = placeholder.getsockname()[1]
    yield {
        "live": factory(POLICY, "--debug"),
        "dead": factory(POLICY, "--debug", upstream_url=f"http://127.0.0.1:{closed_port}"),
        "plain": factory(POLICY),
    }
    factory.close()


async def test_a_forwarded_allowed_response_carries_and_exposes_it(
    debug_edges: dict[str, Edge],
) -> None:
    answer = await fetch("GET", debug_edges["live"].url + "/api/items", {"Origin": APP})
    assert answer.status == 200
    assert answer.headers[HEADER] == (
        f'allowed; {API}; reason="origin allowed by routes[0] path /api/**"'
    )
    assert answer.headers["Access-Control-Expose-Headers"] == f"X-Total-Count, {HEADER}"


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "words"),
    [
        (
            "OPTIONS",
            "/api/items/1",
            {"Origin": APP, "Access-Control-Request-Method": "PUT"},
            204,
            f'preflight_ok; {API}; reason="origin, method and headers allowed by routes[0] '
            'path /api/**"',
        ),
        (
            "OPTIONS",
            "/api/items/1",
            {"Origin": APP, "Access-Control-Request-Method": "DELETE"},
            403,
            f'preflight_refused; {API}; reason="method DELETE is not in routes[0] path '
            '/api/** methods"',
        ),
        (
            "GET",
            "/api/items",
            {"Origin": EVIL},
            403,
            f'blocked; {API}; reason="origin {EVIL} is not allowed by routes[0] path /api/**',
        ),
        (
            "GET",
            "/admin/users",
            {"Origin": APP},
            403,
            f'blocked; route=none; reason="origin {APP} is not allowed: no route matches '
            '(unmatched: block)"',
        ),
        ("GET", "/api/%2e%2e/admin", {"Origin": APP}, 400, "bad_path; route=none; reason="),
        ("GET", "/admin/users", {}, 200, 'no_route; route=none; reason="no route matches"'),
        (
            "GET",
            "/echo",
            {"Origin": EVIL},
            200,
            f'shadow:blocked; route="routes[2] path /echo"; reason="origin {EVIL} is not allowed',
        ),
    ],
)
async def test_edge_answers_and_unrouted_requests_carry_it(
    debug_edges: dict[str, Edge],
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
    words: str,
) -> None:
    answer = await fetch(method, debug_edges["live"].url + path, headers)
    assert answer.status == status
    assert answer.headers[HEADER].startswith(words)
    assert len(answer.headers.getall(HEADER)) == 1
    if status in (403, 400):
        assert answer.cors() == {}  # refusals still grant nothing


async def test_errors_the_edge_makes_carry_it(debug_edges: dict[str, Edge]) -> None:
    allowed = f'allowed; {API}; reason="origin allowed by routes[0] path /api/**"'
    down = await fetch("GET", debug_edges["dead"].url + "/api/items", {"Origin": APP})
    assert (down.status, down.headers[HEADER]) == (502, allowed)
    assert HEADER in down.headers["Access-Control-Expose-Headers"]
    live = debug_edges["live"].url
    slow = await fetch("GET", live + "/api/slow?seconds=3", {"Origin": APP})
    assert (slow.status, slow.headers[HEADER]) == (504, allowed)
    big = await fetch("POST", live + "/api/upload", {"Origin": APP}, b"x" * 5000)
    assert (big.status, big.headers[HEADER]) == (413, allowed)
    head = await asyncio.to_thread(
        _raw_head,
        debug_edges["live"].port,
        b"GET /api/items HTTP/1.1\r\nHost: e\r\nOrigin: " + APP.encode() + b"\r\n"
        b"Cookie: " + b"c" * 4000 + b"\r\n\r\n",
    )
    assert head.split(b" ", 2)[1] == b"431"
    assert f"\r\n{HEADER}: {allowed}\r\n".encode() in head


async def test_without_debug_there_is_no_header(debug_edges: dict[str, Edge]) -> None:
    plain = debug_edges["plain"].url
    answer = await fetch("GET", plain + "/api/items", {"Origin": APP})
    assert HEADER not in answer.headers
    assert answer.headers["Access-Control-Expose-Headers"] == "X-Total-Count"
    blocked = await fetch("GET", plain + "/api/items", {"Origin": EVIL})
    assert blocked.status == 403 and HEADER not in blocked.headers


def _raw_head(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.partition(b"\r\n\r\n")[0] + b"\r\n"


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", "serve", "--config", "config/policies.yaml", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_debug_refuses_a_public_listener(workers: str) -> None:
    # The shipped policy listens on 0.0.0.0:8080; the edge must refuse before binding.
    done = _serve("--debug", "--workers", workers, "--admin", "127.0.0.1:0")
    assert done.returncode == 1
    assert "0.0.0.0:8080, which is not a loopback listener" in done.stderr
    assert "--debug-public" in done.stderr
    assert "listening on" not in done.stderr


async def test_workers_pass_debug_on(edge_factory: EdgeFactory) -> None:
    edge = edge_factory(POLICY, "--debug", "--workers", "2")
    for index in range(2):
        edge.stderr.wait_for(rf"worker {index} .*serving on the parent's listener", 30)
    for _ in range(4):  # whichever worker the kernel picks
        answer = await fetch("GET", edge.url + "/api/items", {"Origin": EVIL})
        assert answer.status == 403
        assert answer.headers[HEADER].startswith(f"blocked; {API}; ")


async def test_loopback_debug_names_the_near_miss(debug_edges: dict[str, Edge]) -> None:
    answer = await fetch("GET", debug_edges["live"].url + "/api/items", {"Origin": EVIL})
    assert answer.headers[HEADER] == (
        f'blocked; {API}; reason="origin {EVIL} is not allowed by routes[0] path /api/**; '
        f"nearest allowed origin: {APP}; differs in host: 127.0.0.1, allowed localhost; "
        'port: 3001, allowed 3000"'
    )


async def test_debug_public_never_names_an_allowed_origin(edge_factory: EdgeFactory) -> None:
    edge = edge_factory(POLICY, "--debug-public")
    for origin in (EVIL, "http://localhost:3001", "http://localhost:3000/"):
        for method, extra in (("GET", {}), ("OPTIONS", {"Access-Control-Request-Method": "PUT"})):
            answer = await fetch(method, edge.url + "/api/items", {"Origin": origin, **extra})
            assert answer.status == 403
            value = answer.headers[HEADER]
            assert value.split(";")[0] in ("blocked", "preflight_refused")
            assert APP not in value and "nearest" not in value


async def test_local_dev_mode_debugs_by_default_on_loopback(
    tmp_path: Path, upstream: Upstream
) -> None:
    edge = start_edge(tmp_path / "absent.yaml", upstream.url, "--allow-origin", APP)
    try:
        edge.stderr.wait_for(r"debug: every response says CORS-Edge-Decision .*by default")
        allowed = await fetch("GET", edge.url + "/api/items", {"Origin": APP})
        assert allowed.headers[HEADER].startswith('allowed; route="routes[0] path /**"; ')
        assert HEADER in allowed.headers["Access-Control-Expose-Headers"]
        refused = await fetch("GET", edge.url + "/api/items", {"Origin": "http://localhost:5173"})
        assert (
            "nearest allowed origin: http://localhost:3000; differs in port"
            in (refused.headers[HEADER])
        )
    finally:
        edge.stop()


async def test_the_readmes_debug_headers_are_what_the_demo_edge_says(
    edge_factory: EdgeFactory,
) -> None:
    """README.md shows CORS-Edge-Decision three times besides its format (the quick
    start's two curls, the refused demo page's GET in the Network tab); the demo's edge
    says exactly that."""
    shown = [
        line.strip().removeprefix(f"{HEADER}: ")
        for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines()
        if line.strip().startswith(f"{HEADER}: ") and "<decision>" not in line
    ]
    edge = edge_factory((REPO / "config" / "policies.yaml").read_text(), "--debug")
    preflight = await fetch(
        "OPTIONS",
        edge.url + "/api/items/1",
        {"Origin": APP, "Access-Control-Request-Method": "PUT"},
    )
    evil = await fetch("POST", edge.url + "/api/items", {"Origin": "https://evil.test"}, b"{}")
    refused_page = await fetch("GET", edge.url + "/api/items", {"Origin": EVIL})
    assert shown == [answer.headers[HEADER] for answer in (preflight, evil, refused_page)]
