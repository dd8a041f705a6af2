"""`cors-edge probe` as users run it: the report, --json, and exit codes 0, 1 and 2.

The recording servers are tests/e2e/recorder.py; the fetch algorithm is test_probe.py.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from proxy.probe import ProbeError, probe
from tests.e2e.recorder import ALLOW, PAGE, Recorder
from tests.support import REPO


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", "probe", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


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


@pytest.mark.parametrize(
    ("url", "args", "words"),
    [
        ("http://[::1", (), "is not an http:// or https:// URL"),  # was a traceback, exit 1
        ("{base}", ("--method", "G ET"), "not a valid HTTP method"),
        ("{base}", ("--header", "X Y: a"), "not a token"),
        ("{userinfo}", (), "a URL that includes credentials"),
    ],
)
def test_what_fetch_throws_for_exits_2_before_sending(
    a: Recorder, url: str, args: tuple[str, ...], words: str
) -> None:
    """Red team: fetch() throws a TypeError for these, so nothing is sent and the probe
    must say the arguments are wrong (exit 2): an unparsable URL was a traceback, the
    others were sent as if a browser could."""
    base = a.url("/x", h=ALLOW)
    userinfo = base.replace("http://", "http://user:pw@", 1)
    result = cli(url.format(base=base, userinfo=userinfo), "--origin", PAGE, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.stderr
    assert a.seen == []


def test_a_redirect_to_a_location_that_is_no_url_is_a_network_error(a: Recorder) -> None:
    """Red team: a readable redirect whose Location does not parse ended in a traceback."""
    result = cli(a.url("/x", h=ALLOW, to="http://[::1", code="302"), "--origin", PAGE)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "verdict: blocked: net::ERR_INVALID_REDIRECT" in result.stdout
