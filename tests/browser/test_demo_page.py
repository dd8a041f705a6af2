"""The demo page (examples/demo_page, served by examples/demo_pages.py) in Chromium.

The page is loaded from an allowed and from a refused origin, as ``./scripts/demo``
serves it, against a real cors-edge ``--debug`` running the shipped policy (its
allowed demo origin moved to the page server's free port) in front of the Flask app.
The test reads what the page shows per call and takes a screenshot of each.
``test_the_shipped_policy_allows_exactly_the_demos_allowed_origin`` holds the shipped
config/policies.yaml itself to the demo's two origins, with no port moved.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Browser

from proxy.cors import Decision, decide
from proxy.loader import load_policy_file
from tests.support import REPO, Edge, EdgeFactory, LineCollector, Upstream, extend_policy

SHIPPED = REPO / "config" / "policies.yaml"
ROUTE = 'route="routes[0] path /api/**"'
ALLOWED_WORDS = f'allowed; {ROUTE}; reason="origin allowed by routes[0] path /api/**"'
PAGE_ARGS = ("--page", "http://localhost:0", "--page", "http://127.0.0.1:0")
CALLS = ("get", "put", "credentialed", "refused-method")


@dataclass(frozen=True)
class Demo:
    allowed: str  # http://localhost:P1, the policy's allowed origin
    refused: str  # http://127.0.0.1:P2
    edge: Edge

    def page(self, origin: str) -> str:
        # The API on "localhost" as in the demo: the page's cookie (host localhost) goes along.
        return f"{origin}/?api=http://localhost:{self.edge.port}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[Demo]:
    pages = subprocess.Popen(
        [sys.executable, "-m", "examples.demo_pages", *PAGE_ARGS],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines = LineCollector(pages.stdout)
    factory = EdgeFactory(tmp_path_factory.mktemp("demo-edge"), upstream)
    try:
        allowed = lines.wait_for(r"demo page on (http://localhost:\d+)/")[1]
        refused = lines.wait_for(r"demo page on (http://127\.0\.0\.1:\d+)/")[1]
        yield Demo(allowed, refused, factory(_shipped_policy_allowing(allowed), "--debug"))
    finally:
        factory.close()
        if pages.poll() is None:
            os.killpg(pages.pid, signal.SIGTERM)
        assert pages.wait(10) == 0  # the page server stops cleanly on SIGTERM


def _shipped_policy_allowing(origin: str) -> str:
    """config/policies.yaml with its demo origin (http://localhost:3000) moved to ``origin``."""
    text = SHIPPED.read_text(encoding="utf-8")
    api = yaml.safe_load(text)["routes"][0]
    assert api["path"] == "/api/**" and "http://localhost:3000" in api["origins"]
    origins = [origin if o == "http://localhost:3000" else o for o in api["origins"]]
    return extend_policy({"routes": [{"path": "/api/**", "origins": origins}]}, base=text)


def _shown(browser: Browser, url: str, screenshot: Path) -> dict[str, dict[str, str]]:
    context = browser.new_context(viewport={"width": 1200, "height": 600})
    try:
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("body[data-done=true]", timeout=30_000)
        page.screenshot(path=str(screenshot), full_page=True)
        shown = {}
        for call in CALLS:
            row = page.locator(f'tr[data-call="{call}"]')
            shown[call] = {
                "verdict": row.locator("td.verdict").inner_text(),
                "status": row.locator("td.status").inner_text(),
                "decision": row.locator("td.decision").inner_text(),
            }
        shown["origin"] = {"text": page.locator("#origin").inner_text()}
        return shown
    finally:
        context.close()


def _assert_blocked(row: dict[str, str]) -> None:
    assert row["verdict"] == "blocked" and row["status"] == "none"
    assert row["decision"] == (
        'blocked: script sees only "TypeError: Failed to fetch"; '
        "CORS-Edge-Decision is in DevTools' Network tab"
    )


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


def test_the_page_on_the_allowed_origin(chromium: Browser, demo: Demo, tmp_path: Path) -> None:
    shot = tmp_path / "allowed.png"
    shown = _shown(chromium, demo.page(demo.allowed), shot)
    assert shown["origin"]["text"] == demo.allowed
    for call in ("get", "put", "credentialed"):
        # credentialed: 200 from /api/me means the page's cookie went along and was let back
        assert shown[call] == {"verdict": "read", "status": "200", "decision": ALLOWED_WORDS}
    _assert_blocked(shown["refused-method"])
    _assert_png(shot)


def test_the_page_on_the_refused_origin(chromium: Browser, demo: Demo, tmp_path: Path) -> None:
    shot = tmp_path / "refused.png"
    shown = _shown(chromium, demo.page(demo.refused), shot)
    assert shown["origin"]["text"] == demo.refused
    for call in CALLS:
        _assert_blocked(shown[call])
    _assert_png(shot)


def test_the_shipped_policy_allows_exactly_the_demos_allowed_origin() -> None:
    """What the demo page asks, decided by the engine on the unmodified shipped file."""
    routes = load_policy_file(SHIPPED).routes

    def preflight(origin: str, method: str, headers: str | None = None) -> Decision:
        verdict = decide(
            routes, "OPTIONS", "/api/items/1", [origin], request_method=method,
            request_headers=headers,
        )  # fmt: skip
        return verdict.decision

    allowed, refused = "http://localhost:3000", "http://127.0.0.1:3001"
    get = decide(routes, "GET", "/api/items", [allowed])
    me = decide(routes, "GET", "/api/me", [allowed])
    assert get.decision is me.decision is Decision.ALLOWED
    assert ("Access-Control-Allow-Credentials", "true") in me.headers
    assert preflight(allowed, "PUT", "content-type") is Decision.PREFLIGHT_OK
    assert preflight(allowed, "PATCH") is Decision.PREFLIGHT_REFUSED
    for path in ("/api/items", "/api/me"):
        assert decide(routes, "GET", path, [refused]).decision is Decision.BLOCKED
    for method in ("PUT", "PATCH"):
        assert preflight(refused, method, "content-type") is Decision.PREFLIGHT_REFUSED
    # and the page's own JavaScript names the same two origins
    script = (REPO / "examples" / "demo_page" / "demo.js").read_text(encoding="utf-8")
    assert re.search(r'ALLOWED_PAGE = "http://localhost:3000"', script)
    assert re.search(r'REFUSED_PAGE = "http://127\.0\.0\.1:3001"', script)
