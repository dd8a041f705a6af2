"""Explain's advice: a cross-origin request that runs legacy code unreadable is named."""

from __future__ import annotations

from proxy.advice import legacy_code_exposure
from proxy.cors import decide
from proxy.loader import load_policy_text

POLICY = load_policy_text(
    "routes:\n  - {path: /api/**, origins: [http://localhost:3000]}\n"
    "  - {path: /legacy/**, origins: [http://localhost:3000], enforce: false}\n"
)


def test_an_unenforced_refusal_names_the_route_and_enforce() -> None:
    verdict = decide(POLICY.routes, "POST", "/legacy/x", ["https://evil.test"])
    text = legacy_code_exposure(verdict, cross_origin=True)
    assert text is not None and "user's cookies" in text
    assert "`enforce: true` on routes[1] path /legacy/**" in text


def test_an_unmatched_cross_origin_request_names_unmatched_block() -> None:
    verdict = decide(POLICY.routes, "POST", "/admin/users", ["https://evil.test"])
    text = legacy_code_exposure(verdict, cross_origin=True)
    assert text is not None and "`unmatched: block`" in text and "user's cookies" in text


def test_nothing_to_say_when_flask_is_not_reached_or_the_page_may_read() -> None:
    for method, path, origin in [
        ("POST", "/api/x", "https://evil.test"),  # blocked at the edge
        ("POST", "/api/x", "http://localhost:3000"),  # allowed: the page may read
    ]:
        assert (
            legacy_code_exposure(decide(POLICY.routes, method, path, [origin]), cross_origin=True)
            is None
        )
    same_origin = decide(POLICY.routes, "POST", "/admin/users", ["http://edge.test"])
    assert legacy_code_exposure(same_origin, cross_origin=False) is None
    blocked = decide(POLICY.routes, "POST", "/admin", ["https://evil.test"], block_unmatched=True)
    assert legacy_code_exposure(blocked, cross_origin=True) is None


def test_a_forwarded_preflight_is_said_to_run_without_cookies() -> None:
    verdict = decide(POLICY.routes, "OPTIONS", "/admin/users", ["https://evil.test"],
                     request_method="DELETE")  # fmt: skip
    text = legacy_code_exposure(verdict, cross_origin=True, preflight=True)
    assert text is not None and "without cookies" in text and "`unmatched: block`" in text
    assert "user's cookies" not in text
