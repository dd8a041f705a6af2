"""DESIGN.md's "Policy file", "Preflights" and "Actual requests" rules, end to end:
a real cors-edge process in front of the real Flask app under gunicorn."""

from __future__ import annotations

import asyncio
import socket
import uuid

import pytest

from proxy.policy import PREFLIGHT_VARY
from tests.e2e.http import fetch
from tests.support import Edge, EdgeFactory, Upstream

APP = "http://localhost:3000"


async def preflight(edge: Edge, path: str, origin: str, method: str, headers: str = ""):  # type: ignore[no-untyped-def]
    request_headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        request_headers["Access-Control-Request-Headers"] = headers
    return await fetch("OPTIONS", edge.url + path, request_headers)


def flask_saw(upstream: Upstream, marker: str) -> bool:
    return any(marker in str(entry.get("raw_uri")) for entry in upstream.requests())


# --- preflights -----------------------------------------------------------------


async def test_permitted_preflight_is_answered_at_the_edge(
    standard_edge: Edge, upstream: Upstream
) -> None:
    marker = uuid.uuid4().hex
    answer = await preflight(
        standard_edge, f"/api/items/1?m={marker}", APP, "PUT", "content-type, authorization"
    )
    assert answer.status == 204
    assert answer.cors() == {
        "Access-Control-Allow-Origin": APP,
        "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE",
        "Access-Control-Allow-Headers": "Content-Type, Authorization",
        "Access-Control-Max-Age": "600",
        "Access-Control-Allow-Credentials": "true",
    }
    assert answer.headers["Vary"] == PREFLIGHT_VARY
    assert not flask_saw(upstream, marker), "a preflight must never reach Flask"


@pytest.mark.parametrize(
    ("origin", "method", "headers"),
    [
        ("https://evil.test", "PUT", ""),
        (APP, "PATCH", ""),
        (APP, "PUT", "x-not-allowed"),
        ("https://example.com", "GET", ""),  # apex of *.example.com
    ],
)
async def test_refused_preflight_is_403_without_cors_headers(
    standard_edge: Edge, upstream: Upstream, origin: str, method: str, headers: str
) -> None:
    marker = uuid.uuid4().hex
    answer = await preflight(standard_edge, f"/api/items?m={marker}", origin, method, headers)
    assert answer.status == 403
    assert answer.cors() == {}
    assert answer.headers["Vary"] == PREFLIGHT_VARY
    assert not flask_saw(upstream, marker)


async def test_subdomain_and_regex_origins(standard_edge: Edge) -> None:
    for origin in (
        "https://a.example.com",
        "https://a.b.example.com",
        "https://pr-7.preview.example.com",
    ):
        answer = await preflight(standard_edge, "/api/items", origin, "DELETE")
        assert answer.status == 204 and answer.headers["Access-Control-Allow-Origin"] == origin
    for origin in ("https://pr-7xpreview.example.com.evil.test", "http://a.example.com"):
        assert (await preflight(standard_edge, "/api/items", origin, "GET")).status == 403


async def test_origins_are_compared_normalised(standard_edge: Edge) -> None:
    answer = await preflight(standard_edge, "/api/items", "HTTPS://A.Example.COM:443", "GET")
    assert answer.status == 204
    assert answer.headers["Access-Control-Allow-Origin"] == "https://a.example.com"


async def test_star_methods_and_headers_echo_what_was_asked(standard_edge: Edge) -> None:
    answer = await preflight(standard_edge, "/echo", APP, "PATCH", "x-one, x-two")
    assert answer.status == 204
    assert answer.headers["Access-Control-Allow-Methods"] == "PATCH"
    assert answer.headers["Access-Control-Allow-Headers"] == "x-one, x-two"


async def test_private_network_preflight(standard_edge: Edge) -> None:
    headers = {
        "Origin": APP,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Private-Network": "true",
    }
    allowed = await fetch("OPTIONS", standard_edge.url + "/echo", headers)
    assert allowed.headers["Access-Control-Allow-Private-Network"] == "true"
    refused = await fetch("OPTIONS", standard_edge.url + "/api/items", headers)
    assert refused.status == 403 and refused.cors() == {}


async def test_preflight_to_unmatched_path_is_forwarded_untouched(
    standard_edge: Edge, upstream: Upstream
) -> None:
    marker = uuid.uuid4().hex
    answer = await preflight(standard_edge, f"/admin/users?m={marker}", APP, "DELETE")
    assert flask_saw(upstream, marker)
    assert answer.status == 200  # Flask's own automatic OPTIONS answer
    assert answer.cors() == {}


async def test_options_without_request_method_is_an_actual_request(
    standard_edge: Edge, upstream: Upstream
) -> None:
    marker = uuid.uuid4().hex
    answer = await fetch("OPTIONS", f"{standard_edge.url}/api/echo?m={marker}", {"Origin": APP})
    assert flask_saw(upstream, marker)
    assert answer.headers["Access-Control-Allow-Origin"] == APP


# --- actual requests --------------------------------------------------------------


async def test_allowed_request_is_forwarded_and_stamped(standard_edge: Edge) -> None:
    answer = await fetch("GET", standard_edge.url + "/api/items", {"Origin": APP})
    assert answer.status == 200
    assert answer.cors() == {
        "Access-Control-Allow-Origin": APP,
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Expose-Headers": "X-Total-Count",
    }
    # merged into the upstream's own Vary, never replacing it
    assert answer.headers.getall("Vary") == ["Accept-Language, Origin"]


async def test_upstream_cors_headers_are_replaced(standard_edge: Edge) -> None:
    # /api/legacy-cors sets "Access-Control-Allow-Origin: *" and credentials itself.
    allowed = await fetch("GET", standard_edge.url + "/api/legacy-cors", {"Origin": APP})
    assert allowed.headers.getall("Access-Control-Allow-Origin") == [APP]
    no_origin = await fetch("GET", standard_edge.url + "/api/legacy-cors")
    assert no_origin.cors() == {}
    assert no_origin.headers["Vary"] == "Origin"


async def test_refused_simple_post_never_runs_legacy_code(
    standard_edge: Edge, upstream: Upstream
) -> None:
    marker = uuid.uuid4().hex
    answer = await fetch(
        "POST",
        f"{standard_edge.url}/api/items?m={marker}",
        {"Origin": "https://evil.test", "Content-Type": "text/plain"},
        b'{"name": "pwned"}',
    )
    assert answer.status == 403
    assert answer.cors() == {}
    assert answer.headers["Vary"] == "Origin"
    assert not flask_saw(upstream, marker)


async def test_enforce_false_forwards_without_cors_headers(
    standard_edge: Edge, upstream: Upstream
) -> None:
    marker = uuid.uuid4().hex
    answer = await fetch(
        "POST", f"{standard_edge.url}/echo?m={marker}", {"Origin": "https://evil.test"}, b"x"
    )
    assert answer.status == 200 and flask_saw(upstream, marker)
    assert answer.cors() == {}
    assert answer.headers["Vary"] == "Origin"


async def test_same_origin_and_originless_requests_pass(
    standard_edge: Edge, upstream: Upstream
) -> None:
    same = f"http://127.0.0.1:{standard_edge.port}"
    marker = uuid.uuid4().hex
    answer = await fetch("POST", f"{standard_edge.url}/api/echo?m={marker}", {"Origin": same}, b"x")
    assert answer.status == 200 and flask_saw(upstream, marker)
    marker = uuid.uuid4().hex
    answer = await fetch("POST", f"{standard_edge.url}/api/echo?m={marker}", {}, b"x")
    assert answer.status == 200 and flask_saw(upstream, marker)
    assert answer.cors() == {} and answer.headers["Vary"] == "Origin"


async def test_unmatched_paths_pass_untouched(standard_edge: Edge, upstream: Upstream) -> None:
    marker = uuid.uuid4().hex
    answer = await fetch(
        "DELETE", f"{standard_edge.url}/admin/users?m={marker}", {"Origin": "https://evil.test"}
    )
    assert answer.status == 200 and flask_saw(upstream, marker)
    assert answer.cors() == {}
    assert "Vary" not in answer.headers


async def test_wildcard_route_answers_star_with_or_without_origin(standard_edge: Edge) -> None:
    for headers in ({"Origin": "https://anyone.test"}, {}):
        answer = await fetch("GET", standard_edge.url + "/public/status", headers)
        assert answer.status == 200
        assert answer.cors() == {"Access-Control-Allow-Origin": "*"}
        assert "Vary" not in answer.headers


async def test_regex_route_with_send_wildcard_false_reflects(standard_edge: Edge) -> None:
    answer = await fetch("GET", standard_edge.url + "/v1/public/info", {"Origin": "https://x.test"})
    assert answer.headers["Access-Control-Allow-Origin"] == "https://x.test"
    assert answer.headers["Vary"] == "Origin"


@pytest.mark.parametrize(
    "origin",
    [
        "https://a.example.com/",
        "https://user@a.example.com",
        "null",
        "https://a.example.com, " + APP,
    ],
)
async def test_malformed_or_unlisted_origins_are_blocked_and_never_echoed(
    standard_edge: Edge, origin: str
) -> None:
    answer = await fetch("GET", standard_edge.url + "/api/items", {"Origin": origin})
    assert answer.status == 403
    assert answer.cors() == {}
    assert origin.encode() not in answer.body


@pytest.mark.parametrize(
    "raw_path",
    [
        "/public/../admin/users",
        "/public/%2e%2e/admin/users",
        "/public/%2E%2E/admin/users",
        "/public/..%2fadmin/users",
        "/public%2F..%2Fadmin/users",
        "/public/%5c../admin/users",
    ],
)
async def test_ambiguous_paths_get_400_before_any_policy(
    standard_edge: Edge, upstream: Upstream, raw_path: str
) -> None:
    marker = uuid.uuid4().hex
    answer = await fetch(
        "GET", f"{standard_edge.url}{raw_path}?m={marker}", {"Origin": "https://evil.test"}
    )
    assert answer.status == 400
    assert answer.cors() == {}
    assert not flask_saw(upstream, marker)


async def test_policy_follows_the_path_flask_routes_and_raw_path_is_forwarded(
    standard_edge: Edge,
) -> None:
    # The WSGI server decodes %65 once: Flask serves /api/echo, so /api/** applies, and the
    # raw path goes upstream byte for byte.
    answer = await fetch("GET", standard_edge.url + "/api/%65cho?x=%2F", {"Origin": APP})
    assert answer.status == 200
    assert answer.headers["Access-Control-Allow-Origin"] == APP
    echoed = answer.json()
    assert isinstance(echoed, dict) and echoed["raw_uri"] == "/api/%65cho?x=%2F"
    # Werkzeug merges empty segments (by redirecting to /api/echo): the same policy applies.
    merged = await fetch("GET", standard_edge.url + "//api//echo", {"Origin": APP})
    assert merged.status == 308
    assert merged.headers["Access-Control-Allow-Origin"] == APP
    refused = await fetch("GET", standard_edge.url + "//api//echo", {"Origin": "https://evil.test"})
    assert refused.status == 403


async def test_globs_are_case_sensitive_like_flask(standard_edge: Edge) -> None:
    answer = await fetch("GET", standard_edge.url + "/API/items", {"Origin": "https://evil.test"})
    assert answer.status == 404  # no route matched, so forwarded; Flask has no /API either
    assert answer.cors() == {}


async def test_null_origin_only_when_listed_literally(edge_factory: EdgeFactory) -> None:
    edge = edge_factory(
        'routes:\n  - path: /api/**\n    origins: ["null", http://localhost:3000]\n'
    )
    answer = await fetch("GET", edge.url + "/api/ping", {"Origin": "null"})
    assert answer.status == 200 and answer.headers["Access-Control-Allow-Origin"] == "null"
    answer = await preflight(edge, "/api/ping", "null", "GET")
    assert answer.status == 204 and answer.headers["Access-Control-Allow-Origin"] == "null"


async def test_requested_header_names_match_case_insensitively(standard_edge: Edge) -> None:
    answer = await preflight(standard_edge, "/api/items", APP, "POST", "AUTHORIZATION,Content-TYPE")
    assert answer.status == 204


async def test_two_origin_headers_are_never_allowed(standard_edge: Edge) -> None:
    def exchange() -> bytes:
        with socket.create_connection(("127.0.0.1", standard_edge.port), timeout=10) as sock:
            sock.sendall(
                b"GET /api/items HTTP/1.1\r\nHost: x\r\nOrigin: http://localhost:3000\r\n"
                b"Origin: http://localhost:3000\r\nConnection: close\r\n\r\n"
            )
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            return data

    data = await asyncio.to_thread(exchange)
    assert data.startswith(b"HTTP/1.1 403")
    assert b"access-control-allow-origin" not in data.lower()
