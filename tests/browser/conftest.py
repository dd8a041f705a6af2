"""Real-browser fixtures: the OS package's Chromium driven by Playwright, page origins, edges.

One Chromium for the whole browser suite; every case gets a fresh browser context (no
shared cookies, no shared preflight cache). The fixtures are package-scoped, not
session-scoped: while Playwright's sync API is running it leaves its asyncio loop marked
as running in the main thread, which breaks every pytest-asyncio test that would run
after tests/browser in the same session; package scope closes it when the suite ends.
Pages are served on loopback by small servers started here, on port 0, and every
process started here is stopped here.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from tests.support import DROP, Edge, EdgeFactory, Upstream, extend_policy

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

_PAGE = b"<!doctype html><meta charset=utf-8><title>cors-edge browser test page</title>"


class _PageHandler(http.server.BaseHTTPRequestHandler):
    """Serves the same blank page on every path: the page only provides an origin."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(_PAGE)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(_PAGE)

    def log_message(self, format: str, *args: object) -> None:
        pass


class PageServer:
    def __init__(self) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class Origins:
    """The page origins of the suite (127.0.0.1 and localhost are different sites)."""

    allowed: str  # http://127.0.0.1:P1 -- listed in the policy
    sibling: str  # http://127.0.0.1:P2 -- same site, other port, not listed
    foreign: str  # http://localhost:P1 -- another site, not listed

    def by_name(self, name: str) -> str:
        return str(getattr(self, name))


def browser_policy(origins: Origins) -> str:
    """The policy the browser suite runs cors-edge with: the base with the one allowed
    page origin (dynamic), and no preflight cache on the versioned public route."""
    allowed = [origins.allowed]
    return extend_policy(
        {
            "timeouts": {"read": 5},
            "routes": [
                {"path": "/api/**", "origins": allowed},
                {"regex": "^/v[0-9]+/public/", "max_age": 0},
                {"path": "/echo", "origins": allowed, "allow_private_network": DROP},
            ],
        }
    )


@pytest.fixture(scope="package")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def chromium(playwright_driver: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        # Never skip: the browser proof must run in CI. scripts/test installs it.
        pytest.fail(f"{CHROMIUM} is missing: install the OS chromium package (scripts/test does)")
    # Playwright's launch() gives the browser a fresh temporary user data dir of its
    # own (and refuses --user-data-dir in args); every case then gets a new context.
    browser = playwright_driver.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture(scope="package")
def origins() -> Iterator[Origins]:
    first, second = PageServer(), PageServer()
    yield Origins(
        allowed=f"http://127.0.0.1:{first.port}",
        sibling=f"http://127.0.0.1:{second.port}",
        foreign=f"http://localhost:{first.port}",
    )
    first.close()
    second.close()


@pytest.fixture(scope="package")
def edges(
    tmp_path_factory: pytest.TempPathFactory, upstream: Upstream, origins: Origins
) -> Iterator[dict[str, Edge]]:
    """The edge in front of the Flask app, and one whose upstream is a closed port (502)."""
    factory = EdgeFactory(tmp_path_factory.mktemp("browser-edge"), upstream)
    closed = PageServer()  # bind a port, then free it: nothing listens there afterwards
    closed_port = closed.port
    closed.close()
    policy = browser_policy(origins)
    live = factory(policy)
    dead = factory(policy, upstream_url=f"http://127.0.0.1:{closed_port}")
    yield {"live": live, "dead": dead}
    factory.close()
