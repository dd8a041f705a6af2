"""A recording HTTP server for the probe's tests: it answers with the headers the query names.

h= on every answer, p= on preflights only, ps= the preflight's status, code= the
status of other requests, to= a Location, loop= a Location back to the same URL. So
each test states the server's behaviour next to what it checks. Loopback, port 0.
"""

from __future__ import annotations

import http.server
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, urlencode, urlsplit

PAGE = "http://localhost:3000"
ALLOW = f"Access-Control-Allow-Origin:{PAGE}"


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

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


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


def start_recorder(host: str) -> Recorder:
    seen: list[Seen] = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(seen))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return Recorder(server, f"http://{host}:{server.server_address[1]}", seen)
