"""The pure decision engine: every preflight and actual-request rule of DESIGN.md."""

from __future__ import annotations

import pytest

from proxy.cors import Decision, Verdict, decide
from proxy.loader import load_policy_text
from proxy.policy import PREFLIGHT_VARY, Config

POLICY = load_policy_text(
    r"""
routes:
  - path: /api/**
    origins:
      - http://localhost:3000
      - https://*.example.com
      - regex: ^https://pr-[0-9]+\.preview\.example\.com$
    methods: [GET, POST, PUT, DELETE]
    allow_headers: [Content-Type, Authorization]
    expose_headers: [X-Total-Count]
    supports_credentials: true
    max_age: 600
  - path: /public/**
    origins: "*"
  - path: /reflect/**
    origins: "*"
    send_wildcard: false
  - path: /open/**
    origins: [http://localhost:3000, "null"]
    methods: "*"
    allow_headers: "*"
    enforce: false
    allow_private_network: true
"""
)


def preflight(
    path: str,
    origin: str | list[str],
    method: str,
    headers: str | None = None,
    policies: Config = POLICY,
    private_network: str | None = None,
) -> Verdict:
    origins = [origin] if isinstance(origin, str) else origin
    return decide(
        policies.routes,
        "OPTIONS",
        path,
        origins,
        request_method=method,
        request_headers=headers,
        request_private_network=private_network,
        self_origin="http://edge.test",
    )


def actual(method: str, path: str, origin: str | list[str] | None) -> Verdict:
    origins = [] if origin is None else [origin] if isinstance(origin, str) else origin
    return decide(POLICY.routes, method, path, origins, self_origin="http://edge.test")


def test_permitted_preflight_has_the_full_header_set() -> None:
    verdict = preflight(
        "/api/items/1", "http://localhost:3000", "PUT", "content-type,authorization"
    )
    assert verdict.decision is Decision.PREFLIGHT_OK and verdict.status == 204
    assert dict(verdict.headers) == {
        "Access-Control-Allow-Origin": "http://localhost:3000",
        "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE",
        "Access-Control-Allow-Headers": "Content-Type, Authorization",
        "Access-Control-Max-Age": "600",
        "Access-Control-Allow-Credentials": "true",
    }
    assert verdict.vary == PREFLIGHT_VARY


@pytest.mark.parametrize(
    ("origin", "method", "headers"),
    [
        ("https://evil.test", "PUT", None),
        ("http://localhost:3000", "PATCH", None),
        ("http://localhost:3000", "PUT", "x-custom"),
        ("http://localhost:3000", "PUT", "content-type, x-custom"),
        ("http://localhost:3000", "put", None),  # methods are case-sensitive, as in Fetch
        ("http://localhost:3000", "PU T", None),
        ("http://localhost:3000", "PUT", "bad header"),
        ("https://example.com", "GET", None),
        (["http://localhost:3000", "http://localhost:3000"], "GET", None),
        ("http://localhost:3000/", "GET", None),
        ("null", "GET", None),
    ],
)
def test_refused_preflight_has_no_cors_headers_but_vary(
    origin: str | list[str], method: str, headers: str | None
) -> None:
    verdict = preflight("/api/items", origin, method, headers)
    assert verdict.decision is Decision.PREFLIGHT_REFUSED and verdict.status == 403
    assert verdict.headers == ()
    assert verdict.vary == PREFLIGHT_VARY


def test_header_names_match_case_insensitively() -> None:
    verdict = preflight("/api/x", "http://localhost:3000", "POST", "AUTHORIZATION, Content-Type")
    assert verdict.decision is Decision.PREFLIGHT_OK


def test_star_methods_and_headers_echo_the_request_never_a_literal_star() -> None:
    verdict = preflight("/open/x", "http://localhost:3000", "PATCH", "X-One, authorization")
    headers = dict(verdict.headers)
    assert headers["Access-Control-Allow-Methods"] == "PATCH"
    assert headers["Access-Control-Allow-Headers"] == "x-one, authorization"
    assert "*" not in "".join(headers.values())


def test_private_network_only_when_asked_and_allowed() -> None:
    asked = preflight("/open/x", "http://localhost:3000", "GET", private_network="true")
    assert dict(asked.headers)["Access-Control-Allow-Private-Network"] == "true"
    not_asked = preflight("/open/x", "http://localhost:3000", "GET")
    assert "Access-Control-Allow-Private-Network" not in dict(not_asked.headers)
    refused = preflight("/api/x", "http://localhost:3000", "GET", private_network="true")
    assert refused.decision is Decision.PREFLIGHT_REFUSED


def test_wildcard_route_preflight_answers_star() -> None:
    verdict = preflight("/public/x", "https://anyone.test", "GET")
    assert dict(verdict.headers)["Access-Control-Allow-Origin"] == "*"


def test_preflight_to_unmatched_path_is_forwarded() -> None:
    verdict = preflight("/admin/users", "http://localhost:3000", "DELETE")
    assert verdict.decision is Decision.NO_ROUTE and not verdict.answered_at_edge


def test_options_without_request_method_is_an_actual_request() -> None:
    verdict = decide(POLICY.routes, "OPTIONS", "/api/x", ["http://localhost:3000"])
    assert verdict.decision is Decision.ALLOWED and not verdict.answered_at_edge


def test_allowed_actual_request_is_stamped_with_vary_origin() -> None:
    verdict = actual("GET", "/api/items", "https://a.b.example.com")
    assert verdict.decision is Decision.ALLOWED
    assert dict(verdict.headers) == {
        "Access-Control-Allow-Origin": "https://a.b.example.com",
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Expose-Headers": "X-Total-Count",
    }
    assert verdict.vary == "Origin"


def test_origin_is_reflected_normalised() -> None:
    verdict = actual("GET", "/api/items", "HTTPS://A.Example.com:443")
    assert dict(verdict.headers)["Access-Control-Allow-Origin"] == "https://a.example.com"


def test_refused_origin_is_blocked_when_enforced() -> None:
    verdict = actual("POST", "/api/items", "https://evil.test")
    assert verdict.decision is Decision.BLOCKED and verdict.status == 403
    assert verdict.headers == () and verdict.vary == "Origin"


def test_refused_origin_is_forwarded_bare_when_not_enforced() -> None:
    verdict = actual("POST", "/open/x", "https://evil.test")
    assert verdict.decision is Decision.UNENFORCED and not verdict.answered_at_edge
    assert verdict.headers == () and verdict.vary == "Origin"


def test_same_origin_and_originless_requests_are_forwarded() -> None:
    same = actual("POST", "/api/items", "http://edge.test")
    assert same.decision is Decision.SAME_ORIGIN and not same.answered_at_edge
    none = actual("POST", "/api/items", None)
    assert none.decision is Decision.NO_ORIGIN and none.headers == () and none.vary == "Origin"


def test_wildcard_route_sends_star_with_or_without_origin_and_no_vary() -> None:
    for origin in (None, "https://x.test"):
        verdict = actual("GET", "/public/a", origin)
        assert dict(verdict.headers)["Access-Control-Allow-Origin"] == "*"
        assert verdict.vary is None


def test_send_wildcard_false_reflects_with_vary() -> None:
    verdict = actual("GET", "/reflect/a", "https://x.test")
    assert dict(verdict.headers)["Access-Control-Allow-Origin"] == "https://x.test"
    assert verdict.vary == "Origin"
    assert actual("GET", "/reflect/a", None).headers == ()


@pytest.mark.parametrize(
    "origin",
    [
        "https://a.example.com, https://evil.test",
        ["https://a.example.com", "https://a.example.com"],
        "https://a.example.com/path",
        "https://user@a.example.com",
        " https://a.example.com",
        "https://a.example.com\r\n",
    ],
)
def test_malformed_origins_are_never_allowed_nor_echoed(origin: str | list[str]) -> None:
    verdict = actual("GET", "/api/items", origin)
    assert verdict.decision is Decision.BLOCKED and verdict.headers == ()


def test_null_only_when_listed() -> None:
    assert actual("GET", "/api/x", "null").decision is Decision.BLOCKED
    assert actual("GET", "/open/x", "null").decision is Decision.ALLOWED


def test_ambiguous_paths_are_refused_before_lookup() -> None:
    verdict = actual("GET", "/public/%2e%2e/admin/users", "https://x.test")
    assert verdict.decision is Decision.BAD_PATH and verdict.status == 400
    assert verdict.route is None


def test_policy_is_chosen_on_the_path_flask_routes() -> None:
    assert actual("GET", "//public///x", "https://x.test").route is not None
    verdict = actual("GET", "/%70ublic/x", "https://x.test")
    assert verdict.route is not None and verdict.route.rule.source == "/public/**"


def test_verdict_cache_agrees_with_the_engine_and_stays_bounded() -> None:
    from proxy.cors import VerdictCache

    cache = VerdictCache(POLICY, size=8)
    cases = [
        ("GET", "/api/items", ["https://a.example.com"], None, "edge.test"),
        ("GET", "/api/items", ["https://a.example.com", "https://a.example.com"], None, "e"),
        ("OPTIONS", "/api/items", ["http://localhost:3000"], "PUT", "edge.test"),
        ("OPTIONS", "/api/items", ["http://localhost:3000"], "PATCH", "edge.test"),
        ("POST", "/api/items", ["http://edge.test"], None, "edge.test"),
        ("POST", "/api/items", ["http://edge.test"], None, "other.test"),
        ("GET", "/public/%2e%2e/x", [], None, None),
    ]
    for _ in range(3):  # misses, then hits
        for method, path, origins, request_method, host in cases:
            expected = decide(
                POLICY.routes,
                method,
                path,
                origins,
                request_method=request_method,
                self_origin=f"http://{host}" if host else None,
            )
            got = cache.decide(method, path, origins, request_method, None, None, "http", host)
            assert got == expected
    for index in range(100):
        cache.decide("GET", f"/api/{index}", [], None, None, None, "http", "h")
    assert len(cache._verdicts) <= 8


# --- least privilege (DESIGN.md "Least privilege") -------------------------------

LEAST = load_policy_text(
    "unmatched: block\nroutes:\n  - path: /api/**\n    origins: [http://localhost:3000]\n"
    "  - path: /closed/**\n    origins: []\n"
)


def least(method: str, path: str, origins: list[str], request_method: str | None = None) -> Verdict:
    return decide(
        LEAST.routes,
        method,
        path,
        origins,
        request_method=request_method,
        self_origin="http://edge.test",
        block_unmatched=True,
    )


def test_an_empty_origin_list_refuses_every_cross_origin_reader() -> None:
    for origin in ("http://localhost:3000", "null", "https://evil.test"):
        assert least("OPTIONS", "/closed/x", [origin], "GET").decision is Decision.PREFLIGHT_REFUSED
        assert least("POST", "/closed/x", [origin]).decision is Decision.BLOCKED
    assert least("POST", "/closed/x", ["http://edge.test"]).decision is Decision.SAME_ORIGIN
    assert least("GET", "/closed/x", []).decision is Decision.NO_ORIGIN


def test_unmatched_block_refuses_cross_origin_like_an_enforced_route() -> None:
    preflight_verdict = least("OPTIONS", "/admin/users", ["http://localhost:3000"], "DELETE")
    assert preflight_verdict.decision is Decision.PREFLIGHT_REFUSED
    assert preflight_verdict.status == 403 and preflight_verdict.headers == ()
    assert preflight_verdict.vary == PREFLIGHT_VARY and preflight_verdict.route is None
    for origins in (["https://evil.test"], ["http://edge.test", "http://edge.test"], ["a b"]):
        blocked = least("POST", "/admin/users", origins)
        assert blocked.decision is Decision.BLOCKED and blocked.status == 403
        assert blocked.headers == () and blocked.vary == "Origin"
    assert "unmatched: block" in least("GET", "/admin", ["https://evil.test"]).reason


def test_unmatched_block_still_forwards_same_origin_and_no_origin() -> None:
    for origins in ([], ["http://edge.test"]):
        verdict = least("POST", "/admin/users", origins)
        assert verdict.decision is Decision.NO_ROUTE and not verdict.answered_at_edge
        assert verdict.headers == () and verdict.vary == "Origin"  # the answer depends on it
    # Same-origin preflight-shaped OPTIONS: not a browser's preflight, forwarded as well.
    assert least("OPTIONS", "/admin", ["http://edge.test"], "PUT").decision is Decision.NO_ROUTE


def test_unmatched_forward_is_the_default_and_keeps_todays_behaviour() -> None:
    verdict = decide(LEAST.routes, "POST", "/admin/users", ["https://evil.test"])
    assert verdict.decision is Decision.NO_ROUTE and verdict.vary is None


def test_verdict_cache_follows_the_policy_unmatched_setting() -> None:
    from proxy.cors import VerdictCache

    blocked = VerdictCache(LEAST).decide(
        "POST", "/admin", ["https://evil.test"], None, None, None, "http", "edge.test"
    )
    assert blocked.decision is Decision.BLOCKED
    forwarded = VerdictCache(POLICY).decide(
        "POST", "/admin", ["https://evil.test"], None, None, None, "http", "edge.test"
    )
    assert forwarded.decision is Decision.NO_ROUTE
