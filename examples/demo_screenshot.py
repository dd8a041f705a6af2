"""Make docs/demo.png: the demo page from both origins, and what DevTools shows.

    ./scripts/demo                                   # in one terminal
    .venv/bin/python -m examples.demo_screenshot     # in another (needs '.[test]')

Loads http://localhost:3000/ (allowed) and http://127.0.0.1:3001/ (refused) in
headless Chromium (/usr/bin/chromium, as the browser tests do), records the raw
response headers of the refused page's first call over CDP (what the Network tab
shows), and renders the three into one image. Not a test: tests/browser/
test_demo_page.py checks what the page shows.
"""

from __future__ import annotations

import argparse
import base64
import html
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGES = (("http://localhost:3000", "allowed origin"), ("http://127.0.0.1:3001", "refused origin"))


def _capture(browser: Browser, origin: str) -> tuple[bytes, dict[str, str] | None]:
    """The page's screenshot, and the raw headers of its blocked GET /api/items."""
    context = browser.new_context(viewport={"width": 1100, "height": 560})
    try:
        page = context.new_page()
        session = context.new_cdp_session(page)
        urls: dict[str, str] = {}
        headers: dict[str, dict[str, Any]] = {}

        def sent(event: dict[str, Any]) -> None:
            urls[event["requestId"]] = f"{event['request']['method']} {event['request']['url']}"

        def received(event: dict[str, Any]) -> None:
            headers[event["requestId"]] = event

        session.on("Network.requestWillBeSent", sent)
        session.on("Network.responseReceivedExtraInfo", received)
        session.send("Network.enable")
        page.goto(origin + "/")
        page.wait_for_selector("body[data-done=true]", timeout=30_000)
        shot = page.screenshot(full_page=True)
        for request_id, event in headers.items():
            if urls.get(request_id, "").endswith("/api/items") and event["statusCode"] == 403:
                return shot, {"status": str(event["statusCode"]), **event["headers"]}
        return shot, None
    finally:
        context.close()


def _composite(shots: Sequence[tuple[str, str, bytes]], network: dict[str, str] | None) -> str:
    panels = []
    for origin, role, shot in shots:
        image = base64.b64encode(shot).decode()
        panels.append(
            f"<h2>{html.escape(origin)} <span>({role})</span></h2>"
            f'<img src="data:image/png;base64,{image}">'
        )
    if network is not None:
        lines = "\n".join(
            f"{html.escape(name)}: {html.escape(value)}"
            for name, value in network.items()
            if name.lower() != "date"
        )
        panels.append(
            "<h2>DevTools, Network tab, the refused page's GET /api/items "
            "<span>(response headers)</span></h2>"
            f"<pre>{lines}</pre>"
        )
    return (
        "<!doctype html><meta charset=utf-8><style>"
        "body{margin:0;padding:12px 18px;background:#f4f6f9;font:15px system-ui,sans-serif}"
        "h2{font-size:15px;margin:14px 0 6px;color:#1d2430}h2 span{color:#5a6472;font-weight:400}"
        "img{display:block;border:1px solid #cfd6df;background:#fff;width:1100px}"
        "pre{background:#fff;border:1px solid #cfd6df;padding:10px 12px;margin:0;width:1074px;"
        "white-space:pre-wrap;font:12.5px ui-monospace,monospace}</style>" + "".join(panels)
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.demo_screenshot")
    parser.add_argument("--out", default="docs/demo.png", help="where (default %(default)s)")
    args = parser.parse_args(argv)
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            shots, network = [], None
            for origin, role in PAGES:
                shot, headers = _capture(browser, origin)
                shots.append((origin, role, shot))
                network = network or headers
            if network is None:
                print("no blocked GET /api/items seen: is ./scripts/demo running?", file=sys.stderr)
                return 1
            page = browser.new_page(viewport={"width": 1140, "height": 400})
            with tempfile.TemporaryDirectory() as tmp:
                composite = Path(tmp) / "demo.html"
                composite.write_text(_composite(shots, network), encoding="utf-8")
                page.goto(composite.as_uri())
                page.screenshot(path=args.out, full_page=True)
        finally:
            browser.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
