"""Client headers a WSGI server reads as routing input never reach it (issue 10, defect 2).

gunicorn trusts its front proxy (127.0.0.1: cors-edge) for ``SCRIPT_NAME`` and strips
that prefix from the path: ``GET /public/admin/users`` + ``SCRIPT_NAME: /public`` got
the ``/public/**`` policy at the edge while Flask ran ``/admin/users``. Header names
with ``_`` are dropped (as nginx does), and so are the prefix/scheme/address headers
gunicorn and Werkzeug's ProxyFix read, unless the peer is in ``trust_forwarded_from``.
Everything runs against the real Flask app under a real gunicorn, defaults untouched.
"""

from __future__ import annotations

import aiohttp

from tests.support import EdgeFactory, Upstream

from .conftest import marker

POLICY = """
routes:
  - path: /public/**
    origins: "*"
    allow_headers: "*"
  - path: /api/**
    origins: [https://app.example.com]
    allow_headers: "*"
"""
TRUSTING_POLICY = POLICY + "trust_forwarded_from: [127.0.0.1/32]\n"

# What gunicorn (forwarder_headers, secure_scheme_headers, header_map) and Werkzeug's
# ProxyFix read, plus the usual rewrite conventions.
ROUTING = {
    "X-Forwarded-Prefix": "/public",
    "X-Forwarded-Port": "8443",
    "X-Forwarded-Ssl": "on",
    "X-Forwarded-Protocol": "ssl",
    "X-Forwarded-Scheme": "https",
    "X-Forwarded-Path": "/admin/users",
    "X-Forwarded-Server": "evil.test",
    "X-Script-Name": "/public",
    "X-Original-URL": "/admin/users",
    "X-Rewrite-URL": "/admin/users",
    "X-Real-IP": "10.9.8.7",
    "Forwarded": "for=10.9.8.7;proto=https;host=evil.test",
    "Front-End-Https": "on",
}
UNDERSCORED = {
    "SCRIPT_NAME": "/public",
    "PATH_INFO": "/admin/users",
    "X_Forwarded_For": "10.9.8.7",
    "X_Custom_Thing": "1",
}


async def _get(url: str, headers: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, await response.text()


async def test_script_name_does_not_reroute_flask(
    edge_factory: EdgeFactory, upstream: Upstream
) -> None:
    edge = edge_factory(POLICY)
    mark = marker()
    status, text = await _get(
        f"{edge.url}/public/admin/users",
        {"SCRIPT_NAME": "/public", "Origin": "https://evil.test", "X-Test-Marker": mark},
    )
    entries = [e for e in upstream.requests() if e.get("marker") == mark]
    assert [e["path"] for e in entries] == ["/public/admin/users"]  # not /admin/users
    assert status == 404
    assert "alice" not in text


async def test_routing_and_underscored_headers_are_dropped(edge_factory: EdgeFactory) -> None:
    edge = edge_factory(POLICY)
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{edge.url}/api/echo",
            headers={**ROUTING, **UNDERSCORED, "X-Kept": "yes"},
        ) as response,
    ):
        assert response.status == 200
        echo = await response.json()
    received = {name.lower(): value for name, value in echo["headers"].items()}
    assert echo["path"] == "/api/echo"
    assert received.get("x-kept") == "yes"  # ordinary headers still pass
    for name in ROUTING:
        assert name.lower() not in received, name
    # Werkzeug shows HTTP_SCRIPT_NAME as Script-Name: neither spelling may arrive.
    for name in ("script-name", "path-info", "x-custom-thing", "script_name"):
        assert name not in received, name
    assert received["x-forwarded-for"] == "127.0.0.1"  # not the X_Forwarded_For spoof


async def test_trusted_proxy_may_set_the_prefix_but_never_underscores(
    edge_factory: EdgeFactory,
) -> None:
    edge = edge_factory(TRUSTING_POLICY)
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{edge.url}/api/echo", headers={"X-Forwarded-Prefix": "/app", **UNDERSCORED}
        ) as response,
    ):
        echo = await response.json()
    received = {name.lower(): value for name, value in echo["headers"].items()}
    assert received.get("x-forwarded-prefix") == "/app"
    assert echo["path"] == "/api/echo"
    for name in ("script-name", "path-info", "x-custom-thing"):
        assert name not in received, name
