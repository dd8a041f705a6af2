"""`probe` against real sockets: what it sends and how it follows redirects, as fetch does.

The recording servers (tests/e2e/recorder.py) answer what each test asks for and keep
every request. Chromium's agreement with the verdicts is
tests/browser/test_probe_vs_chromium.py; the command line is test_probe_cli.py.
"""

from __future__ import annotations

import pytest

from proxy.probe import probe
from tests.e2e.recorder import ALLOW, PAGE, Recorder


def test_origin_becomes_null_after_a_cross_origin_hop_and_authorization_is_dropped(
    a: Recorder, b: Recorder
) -> None:
    target = b.url("/y", h="Access-Control-Allow-Origin:null")
    url = a.url(
        "/x", h=[ALLOW, "Access-Control-Allow-Headers:authorization"], to=target, code="302"
    )
    result = probe(url, origin=PAGE, headers=[("Authorization", "Bearer t")])
    assert result.readable, result
    assert [s.method for s in a.seen] == ["OPTIONS", "GET"]
    assert a.seen[1].headers["Authorization"] == "Bearer t"
    # b: no preflight (without Authorization the GET is simple again), Origin null
    assert [(s.method, s.headers.get("Origin")) for s in b.seen] == [("GET", "null")]
    assert "Authorization" not in b.seen[0].headers
    assert [e.kind for e in result.exchanges] == ["preflight", "redirect", "request"]


def test_a_redirect_within_the_same_server_keeps_the_origin(a: Recorder) -> None:
    url = a.url("/x", h=ALLOW, to=a.url("/y", h=ALLOW), code="307")
    result = probe(url, origin=PAGE, method="PUT", headers=[("X-A", "1")])
    assert not result.readable  # no Access-Control-Allow-Methods: the first preflight fails
    url = a.url(
        "/x",
        h=ALLOW,
        p=["Access-Control-Allow-Methods:PUT", "Access-Control-Allow-Headers:x-a"],
        to=a.url(
            "/y",
            h=ALLOW,
            p=["Access-Control-Allow-Methods:PUT", "Access-Control-Allow-Headers:x-a"],
        ),
        code="307",
    )
    a.seen.clear()
    result = probe(url, origin=PAGE, method="PUT", headers=[("X-A", "1")])
    assert result.readable, result.reason
    # a new preflight on the second URL, and the Origin stays the page's
    assert [(s.method, s.path, s.headers["Origin"]) for s in a.seen] == [
        ("OPTIONS", "/x", PAGE), ("PUT", "/x", PAGE), ("OPTIONS", "/y", PAGE), ("PUT", "/y", PAGE),
    ]  # fmt: skip


def test_a_same_origin_url_needs_no_cors_until_it_leaves_the_origin(
    a: Recorder, b: Recorder
) -> None:
    page = a.base  # the page is on a's own origin
    result = probe(a.url("/x"), origin=page, method="PUT", headers=[("X-A", "1")])
    assert result.readable
    assert [s.method for s in a.seen] == ["PUT"]  # no preflight, no CORS headers needed
    a.seen.clear()
    target = b.url(
        "/y", h=f"Access-Control-Allow-Origin:{page}", p=["Access-Control-Allow-Headers:x-a"]
    )
    result = probe(a.url("/x", to=target, code="302"), origin=page, headers=[("X-A", "1")])
    assert result.readable, result.reason
    assert "Origin" not in a.seen[0].headers  # same-origin GET
    # b is cross-origin: a preflight, and the page's own origin (a same-origin hop never taints)
    assert [(s.method, s.headers["Origin"]) for s in b.seen] == [("OPTIONS", page), ("GET", page)]


def test_303_turns_post_into_get_and_drops_the_body_headers(a: Recorder, b: Recorder) -> None:
    target = b.url("/y", h="Access-Control-Allow-Origin:*")
    url = a.url("/x", h=ALLOW, to=target, code="303")
    result = probe(url, origin=PAGE, method="POST", headers=[("Content-Type", "text/plain")])
    assert result.readable, result.reason
    assert b.seen[0].method == "GET" and "Content-Type" not in b.seen[0].headers


def test_a_redirect_without_cors_headers_is_blocked(a: Recorder, b: Recorder) -> None:
    result = probe(a.url("/x", to=b.url("/y", h="Access-Control-Allow-Origin:*")), origin=PAGE)
    assert not result.readable
    assert result.reason.startswith("No 'Access-Control-Allow-Origin' header")
    assert b.seen == []


@pytest.mark.parametrize(
    ("location", "words"),
    [
        ("ftp://example.test/", "has a disallowed scheme"),
        ("http://user:pw@127.0.0.1:1/", "contains a username and password"),
    ],
)
def test_redirects_fetch_refuses(a: Recorder, location: str, words: str) -> None:
    result = probe(a.url("/x", h=ALLOW, to=location, code="302"), origin=PAGE)
    assert not result.readable and words in result.reason


def test_a_redirect_loop_ends_after_20_redirects(a: Recorder) -> None:
    result = probe(a.url("/loop", h=ALLOW, code="302", loop="1"), origin=PAGE)
    assert not result.readable
    assert result.reason == "net::ERR_TOO_MANY_REDIRECTS"
    assert len(a.seen) == 21  # the first request and 20 redirects followed
