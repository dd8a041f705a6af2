"""The demo's page server: examples/demo_page/ served as is, on one address per origin.

    python -m examples.demo_pages [--page http://localhost:3000] [--page http://127.0.0.1:3001]

The page calls the API through cors-edge and shows what the browser let it see; the
same page on an allowed origin (``http://localhost:3000`` in config/policies.yaml) and
on a refused one (``http://127.0.0.1:3001``) shows both sides of CORS. Each ``--page``
is an origin: its host (``localhost`` listens on 127.0.0.1) and its port (0 picks a
free one); one line per page says where it is served. Stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

PAGE_DIR = Path(__file__).resolve().parent / "demo_page"
DEFAULT_PAGES = ("http://localhost:3000", "http://127.0.0.1:3001")


class _Handler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")  # edits to the page show at once
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # gunicorn and cors-edge already log every API call next to this


def _address(origin: str) -> tuple[str, str, int]:
    parts = urlsplit(origin)
    if parts.scheme != "http" or not parts.hostname or parts.port is None:
        raise SystemExit(f"demo_pages: --page wants http://HOST:PORT, not {origin!r}")
    host = "127.0.0.1" if parts.hostname == "localhost" else parts.hostname
    return parts.hostname, host, parts.port


def serve(pages: Sequence[str]) -> list[http.server.ThreadingHTTPServer]:
    """Start one server per page origin (in threads); prints where each one is."""
    handler = functools.partial(_Handler, directory=str(PAGE_DIR))
    servers = []
    for origin in pages:
        name, host, port = _address(origin)
        server = http.server.ThreadingHTTPServer((host, port), handler)
        server.daemon_threads = True
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print(f"demo page on http://{name}:{server.server_address[1]}/", flush=True)
    return servers


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.demo_pages")
    parser.add_argument(
        "--page",
        action="append",
        metavar="ORIGIN",
        help=f"an origin to serve the page on, repeatable (default: {' and '.join(DEFAULT_PAGES)})",
    )
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        servers = serve(args.page or DEFAULT_PAGES)
    except OSError as error:
        print(f"demo_pages: cannot listen: {error}", file=sys.stderr)
        return 1
    stop.wait()
    for server in servers:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
