"""Red-team findings on paths: the policy is chosen on the path Flask routes."""

from __future__ import annotations

from tests.support import EdgeFactory, Upstream

from .conftest import marker, raw_exchange, request_bytes

# Static assets anywhere are public; the API is for one origin; nothing else is.
STATIC_POLICY = """\
timeouts: {connect: 2, read: 3, client_header: 5}
unmatched: block
defaults:
  methods: [GET, HEAD, POST]
  allow_headers: [Content-Type]
routes:
  - path: /**/*.png
    origins: "*"
  - path: /api/**
    origins: [http://localhost:3000]
    supports_credentials: true
"""


def test_a_raw_fragment_cannot_pick_a_looser_route(
    edge_factory: EdgeFactory, upstream: Upstream
) -> None:
    """``POST /api/items#.png``: cors-edge chose the route on the whole raw path, so the
    ``/**/*.png`` policy (any origin) matched, while the fragment never reached gunicorn
    (cut by the upstream hop, and by gunicorn's own request-line split): a refused
    origin's cross-site POST ran ``/api/items`` behind the enforced route. Browsers never
    send a ``#`` in the request target (they send ``%23``), so it is refused like the
    other raw paths whose meaning differs between hops."""
    edge = edge_factory(STATIC_POLICY)
    for target in ("/api/items#.png", "/api/items#x/y.png", "/#.png"):
        mark = marker()
        request = request_bytes(
            "POST",
            target,
            [
                ("Origin", "https://evil.test"),
                ("X-Test-Marker", mark),
                ("Content-Type", "text/plain"),
            ],
            b"{}",
        )
        responses, _, raw = raw_exchange(edge.port, request)
        assert responses and responses[0].status == 400, (target, raw[:300])
        assert responses[0].cors_headers() == [], target
        assert mark not in upstream.markers(), f"{target} reached Flask"
    # %23 is an ordinary character after one decode, for Flask as for the policy.
    mark = marker()
    request = request_bytes(
        "GET", "/img/a%23b.png", [("Origin", "https://evil.test"), ("X-Test-Marker", mark)]
    )
    responses, _, _ = raw_exchange(edge.port, request)
    assert responses[0].status == 404
    assert responses[0].header("Access-Control-Allow-Origin") == "*"
    entries = [e for e in upstream.requests() if e.get("marker") == mark]
    assert [e["path"] for e in entries] == ["/img/a#b.png"]
