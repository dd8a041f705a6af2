"""Request observers that write logs: the access log (stdout) and upstream errors (stderr).

Access log: one line per request on stdout, JSON (default) or plain text::

    {"time":"2026-11-25T17:31:25.123Z","method":"GET","path":"/api/items","route":
     "routes[0] path /api/**","origin":"http://localhost:3000","decision":"allowed",
     "status":200,"bytes":57,"upstream_ms":3.1,"total_ms":3.9,"generation":1}

``error`` is added when the edge answered for a failed upstream. Upstream errors are
also reported on stderr, through the ``cors_edge`` logger, as a sentence an operator
can act on; each kind at most once per :data:`ERROR_LOG_INTERVAL` seconds, with a
count of the ones held back, so a dead upstream under load does not flood the log.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import time
from typing import TextIO

from .policy import Timeouts
from .records import ErrorKind, RequestError, RequestRecord

log = logging.getLogger("cors_edge")

ERROR_LOG_INTERVAL = 5.0


_second: list[object] = [-1, ""]  # the last whole second formatted, and its text


def _timestamp() -> str:
    now = time.time()
    whole = int(now)
    if _second[0] != whole:
        _second[0], _second[1] = whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{_second[1]}.{int((now - whole) * 1000):03d}Z"


FLUSH_INTERVAL = 0.05  # seconds an access-log line may wait before it is written
FLUSH_LINES = 256  # or until this many are waiting


class AccessLog:
    def __init__(self, log_format: str, stream: TextIO, worker: str | None = None) -> None:
        if log_format not in ("json", "text"):
            raise ValueError(f"unknown access log format {log_format!r}")
        # Under --workers N each line names its worker, so lines can be told apart.
        self._worker_json = "" if worker is None else f',"worker":{int(worker)}'
        self._worker_text = "" if worker is None else f" worker={int(worker)}"
        self.log_format = log_format
        self.stream = stream
        # Lines wait here, not in the stream: stdout is often unbuffered
        # (PYTHONUNBUFFERED=1 in containers), and one write per request is costly.
        self._pending: list[str] = []
        atexit.register(self._flush)  # the lines of the last requests of a drain, too

    def __call__(self, record: RequestRecord) -> None:
        pending = self._pending
        pending.append(self.format(record))
        if len(pending) > 1:
            if len(pending) >= FLUSH_LINES:
                self._flush()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._flush()
            return
        loop.call_later(FLUSH_INTERVAL, self._flush)

    def _flush(self) -> None:
        if not self._pending:
            return
        text = "\n".join(self._pending) + "\n"
        self._pending = []
        with contextlib.suppress(OSError, ValueError):  # stdout closed: keep serving
            self.stream.write(text)
            self.stream.flush()

    def format(self, record: RequestRecord) -> str:
        now = _timestamp()
        upstream_ms = record.upstream_ms
        if self.log_format == "json":
            # Written out by hand: json.dumps of a whole dict costs twice as much, and
            # only the strings a client controls need escaping.
            dumps = _json_string
            upstream = "null" if upstream_ms is None else repr(round(upstream_ms, 3))
            error = f',"error":{dumps(record.error.label)}' if record.error else ""
            return (
                f'{{"time":"{now}","method":{dumps(record.method)},'
                f'"path":{dumps(record.path)},"route":{dumps(record.route)},'
                f'"origin":{dumps(record.origin)},"decision":"{record.decision}",'
                f'"status":{record.status},"bytes":{record.bytes_sent},'
                f'"upstream_ms":{upstream},"total_ms":{round(record.total_ms, 3)!r},'
                f'"generation":{record.generation}{self._worker_json}{error}}}'
            )
        upstream = "-" if upstream_ms is None else f"{upstream_ms:.1f}ms"
        line = (
            f"{now} {record.method} {record.path} {record.status} {record.decision} "
            f"route={_quote(record.route)} origin={_quote(record.origin)} "
            f"bytes={record.bytes_sent} upstream={upstream} total={record.total_ms:.1f}ms "
            f"gen={record.generation}{self._worker_text}"
        )
        if record.error:
            line += f" error={record.error.label}"
        return line


def _json_string(value: str | None) -> str:
    return "null" if value is None else json.dumps(value)


def _quote(value: str | None) -> str:
    """A field for the text format: '-' when absent, JSON-quoted when it holds spaces,
    quotes or anything unprintable (a hostile Origin must not write to the terminal)."""
    if not value:
        return "-"
    if not value.isprintable() or any(char.isspace() or char == '"' for char in value):
        return json.dumps(value)
    return value


class UpstreamErrorLog:
    """Explains failed upstream requests on stderr (rate-limited per kind)."""

    def __init__(
        self, upstream: str, timeouts: Timeouts, interval: float = ERROR_LOG_INTERVAL
    ) -> None:
        self.upstream = upstream
        self.timeouts = timeouts
        self.interval = interval
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def __call__(self, record: RequestRecord) -> None:
        error = record.error
        if error is None:
            return
        kind = "aborted" if error.aborted else error.label  # aborted ones are limited together
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._held[kind] = self._held.get(kind, 0) + 1
            return
        self._last[kind] = now
        held = self._held.pop(kind, 0)
        message = self.explain(record)
        if held:
            message += f" ({held} more like this in the last {self.interval:.0f} s)"
        log.log(logging.INFO if error.is_client else logging.ERROR, "%s", message)

    def explain(self, record: RequestRecord) -> str:
        """One sentence: what failed, what the client got, what to check."""
        error = record.error or RequestError(ErrorKind.UPSTREAM)
        timeouts = self.timeouts
        facts = {
            "upstream": self.upstream,
            "request": f"{record.method} {record.path} answered {record.status}",
            "target": f"{record.method} {record.path}",
            "bytes": record.bytes_sent,
            "detail": error.detail or "invalid HTTP",
            "label": error.label,
            "broken": error.label.partition(":")[2],
            "connect": f"{timeouts.connect:g}",
            "read": f"{timeouts.read:g}",
            "client_body": f"{timeouts.client_body:g}",
            "pool_wait": f"{timeouts.pool_wait:g}",
            "min_rate": f"{timeouts.client_body_min_rate:g}",
            "client_send": f"{timeouts.client_send:g}",
        }
        if error.aborted:
            template = _ABORTED
        elif error.kind is ErrorKind.CONNECT and self.upstream.startswith("unix:"):
            template = _CONNECT_UNIX
        else:
            template = _SENTENCES.get(error.kind, _UNKNOWN)
        return template.format(**facts)


# The sentences of UpstreamErrorLog.explain, one per error kind: what failed, what the
# client got, what to check. Fields: see explain().
_ABORTED = (
    "upstream {upstream} broke off its response after {bytes} bytes ({target}, {broken}): "
    "the client's response was cut off; see the app's log."
)
_CONNECT_UNIX = (
    "upstream {upstream}: cannot connect to the socket ({request}): "
    "is gunicorn running and bound to that path?"
)
_UNKNOWN = "upstream {upstream} failed ({request}): {label}"
_SENTENCES = {
    ErrorKind.CONNECT: "upstream {upstream} refused the connection or is unreachable "
    "({request}): is the Flask app running?",
    ErrorKind.TIMEOUT: "upstream {upstream} did not answer in time ({request}): "
    "timeouts.connect is {connect} s, timeouts.read {read} s; is a worker stuck or are all "
    "workers busy?",
    ErrorKind.DISCONNECTED: "upstream {upstream} closed the connection without answering "
    "({request}): did a gunicorn worker crash or hit its --timeout? See the app's log.",
    ErrorKind.PAYLOAD: "upstream {upstream} failed while receiving the request body "
    "({request}): see the app's log.",
    ErrorKind.POOL_TIMEOUT: "no connection to upstream {upstream} came free in time "
    "({request}): all limits.max_upstream_connections were busy for timeouts.pool_wait "
    "({pool_wait} s); are requests piling up on slow workers?",
    ErrorKind.BAD_RESPONSE: "upstream {upstream} sent a response cors-edge cannot relay "
    "({request}): {detail}; the header size limits are limits.max_upstream_header_line and "
    "limits.max_upstream_header_bytes.",
    ErrorKind.BODY_TOO_LARGE: "request body too large ({request}): raise "
    "limits.max_body_bytes if this upload is legitimate.",
    ErrorKind.CLIENT_BODY_INCOMPLETE: "client broke off its request body ({request}): a "
    "cancelled upload, not an upstream failure.",
    ErrorKind.CLIENT_ABORTED: "client went away after {bytes} bytes of the response "
    "({target}): a cancelled download, not an upstream failure.",
    ErrorKind.WEBSOCKET_HANDSHAKE: "upstream {upstream} did not accept a WebSocket upgrade "
    "({request}): it answered without switching protocols; is this path a WebSocket endpoint?",
    ErrorKind.CLIENT_BODY_TIMEOUT: "client stalled or trickled while sending its request "
    "body ({request}): timeouts.client_body is {client_body} s, "
    "timeouts.client_body_min_rate {min_rate} bytes/s.",
    ErrorKind.CLIENT_SEND_TIMEOUT: "client stopped reading its response after {bytes} bytes "
    "({target}): cut off after timeouts.client_send ({client_send} s), freeing the "
    "upstream worker.",
    ErrorKind.WEBSOCKETS_FULL: "WebSocket refused ({request}): limits.max_websockets are "
    "open already; raise it if this load is legitimate.",
}
