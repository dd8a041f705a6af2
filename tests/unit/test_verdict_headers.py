"""proxy/cors.py: Verdict.answer_headers, the one place an answer's CORS headers and
Vary are chosen, and merge_vary beside it."""

from __future__ import annotations

from proxy.cors import Decision, Verdict, decide, merge_vary
from proxy.loader import load_policy_text
from proxy.policy import PREFLIGHT_VARY

ROUTES = load_policy_text(
    "routes:\n  - path: /api/**\n    origins: [http://localhost:3000]\n"
    "    supports_credentials: true\n  - path: /public/**\n    origins: '*'\n"
).routes
APP = "http://localhost:3000"


def test_merge_vary() -> None:
    assert merge_vary([], "Origin") == "Origin"
    assert merge_vary(["Accept-Language", "accept-language, Cookie"], "origin") == (
        "Accept-Language, Cookie, origin"
    )
    assert merge_vary(["Accept", "*"], "Origin") == "*"
    assert merge_vary([" , "], "") == ""


def test_a_granted_request_carries_its_headers_and_vary() -> None:
    verdict = decide(ROUTES, "GET", "/api/x", [APP])
    assert verdict.decision is Decision.ALLOWED
    assert verdict.answer_headers() == [
        ("Access-Control-Allow-Origin", APP),
        ("Access-Control-Allow-Credentials", "true"),
        ("Vary", "Origin"),
    ]
    assert verdict.answer_headers(["Accept-Language"])[-1] == ("Vary", "Accept-Language, Origin")


def test_a_preflight_carries_its_headers_and_the_preflight_vary() -> None:
    verdict = decide(ROUTES, "OPTIONS", "/api/x", [APP], request_method="GET")
    headers = verdict.answer_headers()
    assert ("Access-Control-Allow-Origin", APP) in headers
    assert headers[-1] == ("Vary", PREFLIGHT_VARY)


def test_a_refusal_grants_nothing_whatever_it_carries() -> None:
    blocked = decide(ROUTES, "GET", "/api/x", ["https://evil.test"])
    assert blocked.answer_headers() == [("Vary", "Origin")]
    leaky = Verdict(Decision.BLOCKED, None, (("Access-Control-Allow-Origin", "*"),), None, "x")
    assert leaky.answer_headers() == []


def test_a_wildcard_answer_does_not_vary_but_keeps_the_upstreams_vary() -> None:
    verdict = decide(ROUTES, "GET", "/public/x", ["https://any.test"])
    assert verdict.answer_headers() == [("Access-Control-Allow-Origin", "*")]
    assert verdict.answer_headers(["Cookie, cookie"]) == [
        ("Access-Control-Allow-Origin", "*"),
        ("Vary", "Cookie"),
    ]
