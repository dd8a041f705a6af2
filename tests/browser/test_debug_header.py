"""``serve --debug`` seen from Chromium: what page script reads, what DevTools shows.

On an allowed response the page's own script reads ``CORS-Edge-Decision`` (cors-edge
lists it in ``Access-Control-Expose-Headers``). On a blocked one script gets only
``TypeError: Failed to fetch``, yet the header is on the wire: the Network data that
DevTools shows (read here over CDP, ``Network.responseReceivedExtraInfo``) carries it,
with the reason and the near-miss hint, for the blocked request and for a refused
preflight.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, CDPSession, Page

from tests.browser.conftest import Origins, browser_policy
from tests.support import Edge, EdgeFactory, Upstream

HEADER = "CORS-Edge-Decision"
FAILED = "TypeError: Failed to fetch"

FETCH_JS = """
async ({url, init}) => {
  try {
    const response = await fetch(url, init);
    await response.text();
    const decision = response.headers.get("CORS-Edge-Decision");
    return {ok: true, status: response.status, decision};
  } catch (error) {
    return {ok: false, error: `${error.name}: ${error.message}`};
  }
}
"""


@pytest.fixture(scope="module")
def debug_edge(
    tmp_path_factory: pytest.TempPathFactory, upstream: Upstream, origins: Origins
) -> Iterator[Edge]:
    factory = EdgeFactory(tmp_path_factory.mktemp("browser-debug-edge"), upstream)
    yield factory(browser_policy(origins), "--debug")
    factory.close()


class NetworkLog:
    """Every response Chromium's network stack saw for the page, with its raw headers."""

    def __init__(self, session: CDPSession) -> None:
        self.urls: dict[str, str] = {}  # requestId -> URL
        self.methods: dict[str, str] = {}
        self.extra: list[dict[str, Any]] = []
        session.on("Network.requestWillBeSent", self._request)
        session.on("Network.responseReceivedExtraInfo", self._response)
        session.send("Network.enable")

    def _response(self, event: dict[str, Any]) -> None:
        self.extra.append(event)

    def _request(self, event: dict[str, Any]) -> None:
        self.urls[event["requestId"]] = event["request"]["url"]
        self.methods[event["requestId"]] = event["request"]["method"]

    def headers_for(
        self, page: Page, method: str, fragment: str, wait: bool = True
    ) -> list[dict[str, str]]:
        """The raw response headers (with their status) of the ``method`` requests to a URL
        containing ``fragment``; waits for Chromium to report them (CDP events come
        asynchronously)."""
        deadline = time.monotonic() + 15  # a safety net only; normally already there
        while True:
            found = [
                {
                    ":status": str(event["statusCode"]),
                    **{name.lower(): value for name, value in event["headers"].items()},
                }
                for event in self.extra
                if self.methods.get(event["requestId"]) == method
                and fragment in self.urls.get(event["requestId"], "")
            ]
            if found or not wait or time.monotonic() > deadline:
                return found
            page.wait_for_timeout(50)


def _open(browser: Browser, origin: str) -> tuple[Any, Page, NetworkLog]:
    context = browser.new_context()
    page = context.new_page()
    network = NetworkLog(context.new_cdp_session(page))
    page.goto(origin + "/page")
    return context, page, network


def test_page_script_reads_the_decision_on_an_allowed_response(
    chromium: Browser, origins: Origins, debug_edge: Edge
) -> None:
    context, page, _ = _open(chromium, origins.allowed)
    try:
        simple = page.evaluate(FETCH_JS, {"url": debug_edge.url + "/api/items", "init": {}})
        put = page.evaluate(
            FETCH_JS,
            {
                "url": debug_edge.url + "/api/items/1",
                "init": {
                    "method": "PUT",
                    "headers": {"Content-Type": "application/json"},
                    "body": "{}",
                },
            },
        )
    finally:
        context.close()
    route = 'route="routes[0] path /api/**"'
    for answer in (simple, put):
        assert answer == {
            "ok": True,
            "status": 200,
            "decision": f'allowed; {route}; reason="origin allowed by routes[0] path /api/**"',
        }


def test_a_blocked_response_shows_it_in_the_network_data_only(
    chromium: Browser, origins: Origins, debug_edge: Edge
) -> None:
    context, page, network = _open(chromium, origins.sibling)
    tag = uuid.uuid4().hex
    try:
        blocked = page.evaluate(
            FETCH_JS, {"url": f"{debug_edge.url}/api/items?case={tag}", "init": {}}
        )
        preflighted = page.evaluate(
            FETCH_JS,
            {"url": f"{debug_edge.url}/api/items/1?case={tag}p", "init": {"method": "PUT"}},
        )
        assert blocked == {"ok": False, "error": FAILED}
        assert preflighted == {"ok": False, "error": FAILED}
        seen = network.headers_for(page, "GET", f"case={tag}")
        seen_preflight = network.headers_for(page, "OPTIONS", f"case={tag}p")
        # fetch() has rejected, so whatever Chromium did for the PUT is reported by now
        seen_put = network.headers_for(page, "PUT", f"case={tag}p", wait=False)
    finally:
        context.close()
    reason = (
        f'reason="origin {origins.sibling} is not allowed by routes[0] path /api/**; '
        f"nearest allowed origin: {origins.allowed}; differs in port: "
    )
    route = 'route="routes[0] path /api/**"'
    assert [(h[":status"], h[HEADER.lower()].split(reason)[0]) for h in seen] == [
        ("403", f"blocked; {route}; ")
    ]
    assert [(h[":status"], h[HEADER.lower()].split(reason)[0]) for h in seen_preflight] == [
        ("403", f"preflight_refused; {route}; ")
    ]
    assert seen_put == []  # the refused preflight stopped the browser: no PUT was sent
    # what the page could not read carried no CORS grant at all
    assert not any("access-control-allow-origin" in headers for headers in seen + seen_preflight)
