from __future__ import annotations

import re

import pytest

from proxy.origins import (
    OriginError,
    OriginSet,
    SubdomainWildcard,
    normalise_configured_origin,
    parse_origin,
)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("http://localhost:3000", "http://localhost:3000"),
        ("HTTPS://App.Example.COM", "https://app.example.com"),
        ("https://app.example.com:443", "https://app.example.com"),
        ("http://app.example.com:80", "http://app.example.com"),
        ("http://app.example.com:443", "http://app.example.com:443"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("null", "null"),
    ],
)
def test_parse_origin_normalises(raw: str, normalised: str) -> None:
    assert parse_origin(raw) == normalised


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "NULL",
        "https://app.example.com/",
        "https://app.example.com/path",
        "https://user@app.example.com",
        "https://user:pw@app.example.com",
        " https://app.example.com",
        "https://app.example.com ",
        "https://app.example.com\r\nX: y",
        "https://app.exa\x00mple.com",
        "https://app.example.com, https://evil.com",
        "https://app.example.com?x=1",
        "https://app.example.com#f",
        "https://app.example.com:",
        "https://app.example.com:99999",
        "https://app.example.com:0443",
        "https://exämple.com",
        "https://a..example.com",
        "app.example.com",
        "//app.example.com",
        "https://" + "a" * 3000 + ".com",
    ],
)
def test_parse_origin_refuses_what_no_browser_sends(raw: str) -> None:
    assert parse_origin(raw) is None


def test_configured_origin_errors_name_the_problem() -> None:
    with pytest.raises(OriginError, match="not an origin"):
        normalise_configured_origin("https://app.example.com/")
    assert normalise_configured_origin("HTTPS://A.example.com:443") == "https://a.example.com"


def test_subdomain_wildcard_matches_any_depth_but_not_apex() -> None:
    origins = OriginSet.build(wildcards=[SubdomainWildcard.parse("https://*.example.com")])
    assert origins.allows("https://a.example.com")
    assert origins.allows("https://a.b.example.com")
    assert not origins.allows("https://example.com")
    assert not origins.allows("http://a.example.com")
    assert not origins.allows("https://a.example.com:8443")
    assert not origins.allows("https://evilexample.com")
    assert not origins.allows("https://a.example.com.evil.com")
    assert not origins.allows("null")


def test_subdomain_wildcard_with_port() -> None:
    origins = OriginSet.build(wildcards=[SubdomainWildcard.parse("http://*.local.test:8080")])
    assert origins.allows("http://a.local.test:8080")
    assert not origins.allows("http://a.local.test")


def test_regex_origins_are_matched_in_full() -> None:
    origins = OriginSet.build(regexes=[re.compile(r"https://pr-[0-9]+\.preview\.example\.com")])
    assert origins.allows("https://pr-12.preview.example.com")
    assert not origins.allows("https://pr-12.preview.example.com.evil.com")
    assert not origins.allows("https://xpr-12.preview.example.com")


def test_exact_and_null() -> None:
    origins = OriginSet.build(exact=["http://localhost:3000"])
    assert origins.allows("http://localhost:3000")
    assert not origins.allows("null")
    assert OriginSet.build(exact=["null"]).allows("null")
    assert OriginSet.build(any_origin=True).allows("https://anything.test")
