"""Near-miss hints (proxy/nearmiss.py): one test per kind of difference."""

from __future__ import annotations

import pytest

from proxy.nearmiss import APEX, CASE, HOST, PATH, PORT, SCHEME, WWW, nearest

POLICY = (
    "http://localhost:3000",
    "https://app.example.com",
    "https://*.example.org",
    r"regex:^https://pr-[0-9]+\.preview\.example\.net$",
)


@pytest.mark.parametrize(
    ("refused", "allowed", "kinds", "words"),
    [
        (
            "https://localhost:3000",
            "http://localhost:3000",
            (SCHEME,),
            "scheme: https, allowed http",
        ),
        ("http://app.example.com", "https://app.example.com", (SCHEME,), "scheme: http"),
        ("http://localhost:5173", "http://localhost:3000", (PORT,), "port: 5173, allowed 3000"),
        (
            "https://app.example.com:8443",
            "https://app.example.com",
            (PORT,),
            "port: 8443, allowed 443 (the default)",
        ),
        ("http://127.0.0.1:3000", "http://localhost:3000", (HOST,), "host: 127.0.0.1"),
        ("https://app.exmaple.com", "https://app.example.com", (HOST,), "allowed app.example.com"),
        ("https://api.example.com", "https://app.example.com", (HOST,), "host: api.example.com"),
        ("https://www.app.example.com", "https://app.example.com", (WWW,), "www."),
        ("http://localhost:3000/", "http://localhost:3000", (PATH,), "a trailing slash"),
        ("http://localhost:3000/app", "http://localhost:3000", (PATH,), "a path (/app)"),
        ("http://LocalHost:3000", "http://localhost:3000", (CASE,), "upper case"),
        ("https://example.org", "https://*.example.org", (APEX,), "covers subdomains only"),
        (
            "http://a.example.org",
            "https://*.example.org",
            (SCHEME,),
            "scheme: http, allowed https",
        ),
        (
            "https://PR-12.preview.example.net",
            r"regex:^https://pr-[0-9]+\.preview\.example\.net$",
            (CASE,),
            "upper case",
        ),
        (
            "http://pr-12.preview.example.net",
            r"regex:^https://pr-[0-9]+\.preview\.example\.net$",
            (SCHEME,),
            "scheme",
        ),
        (
            "https://pr-7.preview.example.net/",
            r"regex:^https://pr-[0-9]+\.preview\.example\.net$",
            (PATH,),
            "trailing slash",
        ),
    ],
)
def test_each_kind_of_difference(
    refused: str, allowed: str, kinds: tuple[str, ...], words: str
) -> None:
    miss = nearest(refused, (*POLICY, allowed) if allowed not in POLICY else POLICY)
    assert miss is not None
    assert miss.allowed == allowed
    assert miss.differences == kinds
    assert words in miss.hint


def test_the_nearest_of_several_wins() -> None:
    miss = nearest(
        "https://localhost:3001",
        ["https://other.test", "http://localhost:3000", "https://localhost:3000"],
    )
    assert miss is not None
    assert miss.allowed == "https://localhost:3000"
    assert miss.differences == (PORT,)


def test_two_differences_at_once() -> None:
    miss = nearest("https://www.example.com/", ["http://example.com"])
    assert miss is not None
    assert miss.differences == (SCHEME, WWW, PATH)
    assert len(miss.details) == 3


def test_wildcard_names_the_subdomain_it_would_accept() -> None:
    miss = nearest("http://shop.example.org", ["https://*.example.org"])
    assert miss is not None
    assert miss.nearest == "https://shop.example.org"
    assert "https://shop.example.org (https://*.example.org)" in miss.hint


def test_upper_case_in_the_allowed_value_is_named_too() -> None:
    # probe: a server answering Access-Control-Allow-Origin: http://Localhost:3000
    miss = nearest("http://localhost:3000", ["http://Localhost:3000"])
    assert miss is not None
    assert miss.differences == (CASE,)
    assert "byte for byte" in miss.hint


@pytest.mark.parametrize(
    "refused",
    ["https://evil.test", "null", "not an origin", "http://attacker.example:9999", ""],
)
def test_another_site_is_not_a_near_miss(refused: str) -> None:
    assert nearest(refused, POLICY) is None


def test_star_and_matching_origins_report_nothing() -> None:
    assert nearest("https://evil.test", ["*"]) is None
    assert nearest("http://localhost:3000", ["http://localhost:3000"]) is None
    assert nearest("https://a.example.org", ["https://*.example.org"]) is None


def test_scheme_change_alone_does_not_report_default_ports() -> None:
    miss = nearest("http://app.example.com", ["https://app.example.com"])
    assert miss is not None and miss.differences == (SCHEME,)
