"""Red-team findings on same-origin detection: when the scheme is in doubt, nothing is
same-origin (issue 10, defect 10), whichever forwarding header carries the doubt."""

from __future__ import annotations

import pytest

from tests.support import EdgeFactory, Upstream

from .conftest import marker, raw_exchange, request_bytes

ROUTES = """
routes:
  - path: /api/**
    origins: [https://app.example.com]
    methods: [GET, POST, PUT]
"""


def _post(edge_port: int, upstream: Upstream, headers: list[tuple[str, str]]) -> tuple[int, bool]:
    mark = marker()
    request = request_bytes(
        "POST",
        "/api/echo",
        [*headers, ("Content-Type", "text/plain"), ("X-Test-Marker", mark)],
        b"x",
        host="api.test",
    )
    responses, _, raw = raw_exchange(edge_port, request)
    assert responses and responses[0].status is not None, raw
    return responses[0].status, mark in upstream.markers()


@pytest.mark.parametrize(
    "forwarding",
    [
        [("X-Forwarded-Proto", "https, http")],  # a terminator that appends its own
        [("X-Forwarded-Proto", "https"), ("X-Forwarded-Proto", "http")],  # two fields
        [("Forwarded", "for=192.0.2.1;proto=http")],  # RFC 7239 instead
    ],
)
def test_public_scheme_https_contradicted_by_any_report(
    edge_factory: EdgeFactory, upstream: Upstream, forwarding: list[tuple[str, str]]
) -> None:
    """``public_scheme: https`` and an untrusted terminator reporting ``http`` for the
    page: only the first ``X-Forwarded-Proto`` element of the first field was read,
    and ``Forwarded`` not at all, so the doubt was missed and the POST reached Flask
    as same-origin."""
    edge = edge_factory("public_scheme: https\n" + ROUTES)
    headers = [("Origin", "https://api.test"), *forwarding]
    assert _post(edge.port, upstream, headers) == (403, False)
    # Nothing contradicts it: the app's own https page is same-origin, as before.
    assert _post(edge.port, upstream, [("Origin", "https://api.test")]) == (200, True)


def test_the_guessed_scheme_contradicted_by_forwarded(
    edge_factory: EdgeFactory, upstream: Upstream
) -> None:
    """No ``public_scheme``: behind a terminator that sends ``Forwarded: proto=https``
    (not ``X-Forwarded-Proto``), an http page on the API's own host counted as
    same-origin and its POST reached Flask: issue 10's defect 10 with RFC 7239."""
    edge = edge_factory(ROUTES)
    contradicted = [("Origin", "http://api.test"), ("Forwarded", 'for="[2001:db8::1]";proto=https')]
    assert _post(edge.port, upstream, contradicted) == (403, False)
    assert _post(edge.port, upstream, [("Origin", "http://api.test")]) == (200, True)
