"""The access log (one line per request on stdout, JSON or text) and the upstream
error log (stderr, a sentence an operator can act on)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.accesslog import AccessLog, UpstreamErrorLog
from proxy.policy import Timeouts
from proxy.records import ErrorKind, RequestError, RequestRecord
from tests.conftest import STANDARD_POLICY
from tests.e2e.http import fetch
from tests.ops.test_metrics import APP, EVIL, closed_port
from tests.support import Edge, EdgeFactory

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
FIELDS = {
    "time",
    "method",
    "path",
    "route",
    "origin",
    "decision",
    "status",
    "bytes",
    "upstream_ms",
    "total_ms",
    "generation",
}


async def lines(edge: Edge, count: int) -> list[str]:
    """The edge's stdout once it holds ``count`` lines (the observer runs after the
    response is written, so a line may trail its response by a moment)."""
    deadline = time.monotonic() + 15  # a safety net only: the line is the event
    while len(edge.stdout.lines) < count:
        assert time.monotonic() < deadline, edge.stdout.text()
        await asyncio.sleep(0.01)
    return list(edge.stdout.lines)


async def test_json_access_log(edge_factory: EdgeFactory) -> None:
    edge = edge_factory(STANDARD_POLICY)
    ok = await fetch("GET", edge.url + "/api/items?limit=2", {"Origin": APP})
    await fetch(
        "OPTIONS", edge.url + "/api/items", {"Origin": EVIL, "Access-Control-Request-Method": "PUT"}
    )
    await fetch("GET", edge.url + "/public/status")
    raw = await lines(edge, 3)
    entries = [json.loads(line) for line in raw]
    assert len(entries) == 3
    for entry in entries:
        assert set(entry) == FIELDS
        assert TIME.match(entry["time"])
        assert entry["generation"] == 1
        assert entry["total_ms"] >= 0
    first, second, third = entries
    assert first["method"] == "GET"
    assert first["path"] == "/api/items?limit=2"
    assert first["route"] == "routes[0] path /api/**"
    assert first["origin"] == APP
    assert first["decision"] == "allowed"
    assert first["status"] == 200
    assert first["bytes"] == len(ok.body)
    assert 0 < first["upstream_ms"] <= first["total_ms"]
    assert second["method"] == "OPTIONS"
    assert second["decision"] == "preflight_refused"
    assert second["status"] == 403
    assert second["origin"] == EVIL
    assert second["upstream_ms"] is None  # answered at the edge
    assert third["route"] == "routes[1] path /public/**"
    assert third["decision"] == "no_origin"
    assert third["origin"] is None
    # Nothing but access-log lines on stdout; the process log is on stderr.
    assert all(line.startswith("{") for line in edge.stdout.lines)
    assert "listening on" in edge.stderr.text()


async def test_text_access_log(edge_factory: EdgeFactory) -> None:
    edge = edge_factory(STANDARD_POLICY, "--log-format", "text")
    await fetch("GET", edge.url + "/api/ping", {"Origin": APP})
    await fetch("GET", edge.url + "/api/ping", {"Origin": EVIL})
    first, second = await lines(edge, 2)
    assert re.fullmatch(
        r"\S+Z GET /api/ping 200 allowed route=\"routes\[0\] path /api/\*\*\" "
        r"origin=http://localhost:3000 bytes=4 upstream=[\d.]+ms total=[\d.]+ms gen=1",
        first,
    ), first
    assert re.fullmatch(
        r"\S+Z GET /api/ping 403 blocked route=\"routes\[0\] path /api/\*\*\" "
        r"origin=http://evil.test bytes=0 upstream=- total=[\d.]+ms gen=1",
        second,
    ), second


async def test_no_access_log(edge_factory: EdgeFactory) -> None:
    edge = edge_factory(STANDARD_POLICY, "--no-access-log")
    for _ in range(3):
        assert (await fetch("GET", edge.url + "/api/ping", {"Origin": APP})).status == 200
    # Everything the edge ever wrote on stdout, read to the end of the pipe after it
    # exited: no line can still be on its way.
    assert edge.stop() == 0
    edge.stdout.wait_closed()
    assert edge.stdout.lines == []


async def test_upstream_down_is_explained_on_stderr(edge_factory: EdgeFactory) -> None:
    port = closed_port()
    edge = edge_factory(STANDARD_POLICY, upstream_url=f"http://127.0.0.1:{port}")
    for _ in range(5):
        assert (await fetch("GET", edge.url + "/api/ping", {"Origin": APP})).status == 502
    entries = [json.loads(line) for line in await lines(edge, 5)]
    assert [entry["error"] for entry in entries] == ["connect"] * 5
    assert [entry["status"] for entry in entries] == [502] * 5
    message = (
        f"upstream http://127.0.0.1:{port} refused the connection or is unreachable "
        "(GET /api/ping answered 502): is the Flask app running?"
    )
    stderr = edge.stderr.text()
    assert message in stderr
    assert stderr.count("is the Flask app running?") == 1  # rate-limited per kind
    assert "WARNING upstream unavailable" not in stderr  # one explanation, not two lines


def record(**changes: object) -> RequestRecord:
    base: dict[str, object] = {
        "method": "GET",
        "path": "/api/x",
        "route": "routes[0] path /api/**",
        "origin": APP,
        "decision": "allowed",
        "status": 502,
        "bytes_sent": 0,
        "upstream_ms": None,
        "total_ms": 1.5,
        "error": RequestError(ErrorKind.CONNECT),
    }
    base.update(changes)
    return RequestRecord(**base)  # type: ignore[arg-type]


def error_of(label: str) -> RequestError:
    """The RequestError the access log names ``label`` (``aborted:<kind>`` or a kind)."""
    aborted, _, kind = label.rpartition(":")
    return RequestError(ErrorKind(kind), aborted=bool(aborted))


@pytest.mark.parametrize(
    ("upstream", "error", "status", "advice"),
    [
        ("unix:/run/app.sock", "connect", 502, "is gunicorn running and bound to that path?"),
        ("http://127.0.0.1:5000", "timeout", 504, "timeouts.connect is 5 s, timeouts.read 60 s"),
        ("http://127.0.0.1:5000", "disconnected", 502, "did a gunicorn worker crash"),
        ("http://127.0.0.1:5000", "payload", 502, "failed while receiving the request body"),
        ("http://127.0.0.1:5000", "aborted:disconnected", 200, "broke off its response"),
        ("http://127.0.0.1:5000", "body_too_large", 413, "raise limits.max_body_bytes"),
        ("http://127.0.0.1:5000", "client_body_timeout", 408, "timeouts.client_body is 60 s"),
        ("http://127.0.0.1:5000", "pool_timeout", 503, "timeouts.pool_wait (10 s)"),
        ("http://127.0.0.1:5000", "bad_response", 502, "limits.max_upstream_header_line"),
    ],
)
def test_error_explanations(upstream: str, error: str, status: int, advice: str) -> None:
    explainer = UpstreamErrorLog(upstream, Timeouts())
    assert advice in explainer.explain(record(error=error_of(error), status=status))


def test_error_log_rate_limit(caplog: pytest.LogCaptureFixture) -> None:
    explainer = UpstreamErrorLog("http://127.0.0.1:5000", Timeouts(), interval=0.0)
    held = UpstreamErrorLog("http://127.0.0.1:5000", Timeouts(), interval=3600.0)
    with caplog.at_level(logging.INFO, logger="cors_edge"):
        for _ in range(3):
            explainer(record())
            held(record())
        held(record(error=RequestError(ErrorKind.TIMEOUT), status=504))
        held(record(error=None, status=200))
    messages = [r.getMessage() for r in caplog.records]
    assert sum("refused the connection" in m for m in messages) == 3 + 1
    assert sum("did not answer in time" in m for m in messages) == 1


def test_access_log_formats_in_process() -> None:
    stream = io.StringIO()
    AccessLog("json", stream)(record(upstream_ms=1.23456, generation=7))
    entry = json.loads(stream.getvalue())
    assert entry["upstream_ms"] == 1.235
    assert entry["generation"] == 7
    assert entry["error"] == "connect"
    stream = io.StringIO()
    AccessLog("text", stream)(record(route=None, origin=None, error=None))
    assert " route=- origin=- " in stream.getvalue()
    with pytest.raises(ValueError):
        AccessLog("xml", stream)


def test_text_format_escapes_unprintable_fields() -> None:
    from proxy.accesslog import _quote

    assert _quote("https://a\x1b[31m.test") == '"https://a\\u001b[31m.test"'
    assert _quote("https://ok.test") == "https://ok.test"
    assert _quote(None) == "-"


@given(
    path=st.text(),
    origin=st.none() | st.text(),
    upstream_ms=st.none() | st.floats(min_value=0, max_value=1e6),
    error=st.none()
    | st.builds(
        RequestError, st.sampled_from(ErrorKind), st.booleans(), st.none() | st.text(min_size=1)
    ),
)
def test_json_lines_always_parse_whatever_the_client_sent(
    path: str, origin: str | None, upstream_ms: float | None, error: RequestError | None
) -> None:
    record = RequestRecord(
        method="GET",
        path=path,
        route=None,
        origin=origin,
        decision="no_route",
        status=200,
        bytes_sent=3,
        upstream_ms=upstream_ms,
        total_ms=1.5,
        generation=2,
        error=error,
    )
    entry = json.loads(AccessLog("json", io.StringIO()).format(record))
    assert entry["path"] == path and entry["origin"] == origin
    assert entry.get("error") == (error.label if error else None) and entry["generation"] == 2
