"""Red-team findings on request headers: nothing a page sends may change what Flask runs
behind the route's policy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import EdgeFactory, Upstream, start_upstream

from .conftest import HARDENING_POLICY, marker, raw_exchange, request_bytes

ORIGIN = "http://localhost:3000"
# The partner may read and create, never delete; it may send any header it likes.
POLICY = f"""\
timeouts: {{connect: 2, read: 3, client_header: 5}}
routes:
  - path: /api/**
    origins: [{ORIGIN}]
    methods: [GET, POST]
    allow_headers: "*"
    supports_credentials: true
"""
OVERRIDES = ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override")


@pytest.fixture(scope="module")
def override_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    server = start_upstream(
        tmp_path_factory.mktemp("override"), workers=1, app="tests.hardening.override_app:app"
    )
    yield server
    server.stop()


def test_a_method_override_header_cannot_turn_a_post_into_a_delete(
    tmp_path: Path, override_upstream: Upstream
) -> None:
    """``methods: [GET, POST]`` with ``allow_headers: "*"``: the page's preflight asks
    for POST with ``x-http-method-override`` and is granted both, then its POST carries
    ``X-HTTP-Method-Override: DELETE`` and the app's override middleware (the one
    Flask's documentation gives) ran DELETE with the user's cookies: the route's
    ``methods`` was no limit at all. The override headers are routing input like
    ``SCRIPT_NAME``; cors-edge now never forwards them."""
    factory = EdgeFactory(tmp_path, override_upstream)
    try:
        edge = factory(POLICY)
        preflight = request_bytes(
            "OPTIONS",
            "/api/items/1",
            [
                ("Origin", ORIGIN),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "content-type,x-http-method-override"),
            ],
        )
        responses, _, _ = raw_exchange(edge.port, preflight)
        assert responses[0].status == 204  # the browser will send the POST
        for name in OVERRIDES:
            mark = marker()
            post = request_bytes(
                "POST",
                "/api/items/1",
                [
                    ("Origin", ORIGIN),
                    ("Cookie", "session=legacy-session-42"),
                    (name, "DELETE"),
                    ("Content-Type", "application/json"),
                    ("X-Test-Marker", mark),
                ],
                b"{}",
            )
            responses, _, raw = raw_exchange(edge.port, post)
            assert responses, raw
            methods = [e["method"] for e in override_upstream.requests() if e.get("marker") == mark]
            assert methods == ["POST"], (name, methods, responses[0].head)
    finally:
        factory.close()


def test_every_access_control_request_field_of_a_preflight_is_read(
    edge_factory: EdgeFactory,
) -> None:
    """A second ``Access-Control-Request-Headers`` field was never read (only the first
    was), so a preflight asking for a header the route does not allow got 204; two
    ``Access-Control-Request-Method`` fields (no browser's) were judged by the first."""
    edge = edge_factory(HARDENING_POLICY)
    base = [("Origin", "https://app.example.com")]
    cases = [
        ([("Access-Control-Request-Method", "PUT")], 204),  # the control
        (
            [
                ("Access-Control-Request-Method", "PUT"),
                ("Access-Control-Request-Headers", "content-type"),
                ("Access-Control-Request-Headers", "x-not-allowed"),
            ],
            403,
        ),
        (
            [("Access-Control-Request-Method", "PUT"), ("Access-Control-Request-Method", "PUT")],
            403,
        ),
    ]
    for extra, status in cases:
        request = request_bytes("OPTIONS", "/api/items", [*base, *extra])
        responses, _, raw = raw_exchange(edge.port, request)
        assert responses and responses[0].status == status, (extra, raw[:200])
