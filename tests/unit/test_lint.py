"""Lint: warnings that name file:line key, never refusals."""

from __future__ import annotations

import pytest

from proxy.lint import lint, unbounded_name_prefix, unbounded_tail
from proxy.loader import load_policy_text


def warnings_of(text: str) -> str:
    return "\n".join(load_policy_text(text, "p.yaml").warnings)


def test_each_warning_names_its_line_and_key() -> None:
    text = warnings_of(
        """
routes:
  - path: /api/*
    origins:
      - "null"
      - regex: https://pr-[0-9]+.preview.example.com
    supports_credentials: true
    max_age: 86400
  - path: /public/**
    origins: "*"
"""
    )
    assert "p.yaml:3 routes[0].path: warning: '/api/*' matches one segment only" in text
    assert "p.yaml:5 routes[0].origins[0]: warning:" in text and "null" in text
    assert "p.yaml:6 routes[0].origins[1].regex: warning: unescaped '.'" in text
    assert "p.yaml:6 routes[0].origins[1].regex: warning: regex origins are matched" in text
    assert "p.yaml:8 routes[0].max_age: warning: 86400 exceeds browsers' caps" in text
    assert "p.yaml:10 routes[1].origins: warning:" in text and "accept cookies" in text


def test_a_value_inherited_from_defaults_is_warned_about_once_at_its_line() -> None:
    policies = load_policy_text(
        "defaults:\n  max_age: 9000\nroutes:\n  - {path: /a, origins: '*'}\n"
        "  - {path: /b, origins: '*'}\n",
        "p.yaml",
    )
    assert [w for w in policies.warnings if "max_age" in w] == [
        "p.yaml:2 defaults.max_age: warning: 9000 exceeds browsers' caps (Chromium 7200 s, "
        "Firefox 86400 s); preflights will be repeated sooner"
    ]


def test_a_clean_policy_has_no_route_warnings() -> None:
    text = warnings_of(
        "routes:\n  - path: /api/**\n    origins:\n"
        "      - regex: ^https://pr-[0-9]+\\.preview\\.example\\.com$\n"
        "    supports_credentials: true\n"
    )
    assert "routes[" not in text


@pytest.mark.parametrize(
    ("pattern", "tail"),
    [
        (r"^https://app\.example\.com.*$", ".*"),
        (r"^https://app\.example\.com.*", ".*"),
        (r"^https://app\.example\.com.+?$", ".+"),
        (r"^https://app\.example\.com[a-z.]*$", "[a-z.]*"),
        (r"^https://app\.example\.com(\.[a-z]+)*$", r"(\.[a-z]+)*"),
        (r"^https://app\.example\.com\S+$", r"\S+"),
        (r"^https://app\.example\.com[^/]{1,}$", "[^/]{1,}"),
    ],
)
def test_unbounded_tails_are_found(pattern: str, tail: str) -> None:
    found = unbounded_tail(pattern)
    assert found == tail


@pytest.mark.parametrize(
    "pattern",
    [
        r"^https://pr-[0-9]+\.preview\.example\.com$",
        r"^https://app\.example\.com(:[0-9]+)?$",
        r"^https://app\.example\.com:[0-9]+$",
        r"^https://.*\.example\.com$",
        r"^https://app\.example\.com$",
        r"^https://app\.example\.co\w*$",
    ],
)
def test_bounded_tails_are_not_reported(pattern: str) -> None:
    assert unbounded_tail(pattern) is None


def test_check_warns_for_an_origin_regex_that_lets_any_suffix_in() -> None:
    text = warnings_of(
        "routes:\n  - path: /api/**\n    origins:\n      - regex: ^https://app\\.example\\.com.*$\n"
    )
    assert "p.yaml:4 routes[0].origins[0].regex: warning: ends in '.*'" in text
    assert "lets any suffix in" in text


def test_lint_of_no_routes_is_empty() -> None:
    assert lint([]) == ()


@pytest.mark.parametrize(
    ("pattern", "found"),
    [
        (r"^https://.*example\.com$", (".*", "example")),
        (r"^https://[a-z]+example\.com$", ("[a-z]+", "example")),
        (r"^https://\w+example\.com$", (r"\w+", "example")),
        (r"^https://([a-z]+-)*example\.com$", ("([a-z]+-)*", "example")),
    ],
)
def test_a_repetition_right_before_a_name_is_found(pattern: str, found: tuple[str, str]) -> None:
    assert unbounded_name_prefix(pattern) == found


@pytest.mark.parametrize(
    "pattern",
    [
        r"^https://.*\.example\.com$",
        r"^https://([a-z0-9-]+\.)*example\.com$",
        r"^https://pr-[0-9]+\.preview\.example\.com$",
        r"^https://pr-[0-9]+preview\.example\.com$",  # digits make no other site's name
        r"^https://(www\.)?example\.com$",
        r"^https://a\*b\.com$",
    ],
)
def test_whole_label_repetitions_are_not_reported(pattern: str) -> None:
    assert unbounded_name_prefix(pattern) is None


def test_check_warns_for_an_origin_regex_that_lets_evilexample_in() -> None:
    text = warnings_of(
        "routes:\n  - path: /api/**\n    origins:\n      - regex: ^https://.*example\\.com$\n"
    )
    assert "p.yaml:4 routes[0].origins[0].regex: warning: '.*' right before 'example'" in text


@pytest.mark.parametrize(
    ("origin", "suffix"),
    [
        ('"https://*.com"', "com"),
        ('"https://*.co.uk"', "co.uk"),
        ('"https://*.github.io"', "github.io"),  # every GitHub Pages site
        ('"http://*.herokuapp.com:8080"', "herokuapp.com"),
        (r"{regex: '^https://.*\.com$'}", "com"),  # every .com site
        (r"{regex: '^https://[a-z0-9-]+\.com$'}", "com"),
        (r"{regex: '^https://[a-z0-9-]+\.vercel\.app$'}", "vercel.app"),
        (r"{regex: '^https?://[^.]+\.(com|org)$'}", "com"),
    ],
)
def test_an_origin_that_lets_any_name_under_a_public_suffix_in_is_warned_about(
    origin: str, suffix: str
) -> None:
    """Red team: these let strangers' sites in (anyone registers a .com name or gets a
    github.io subdomain), with credentials too, and check said nothing."""
    text = warnings_of(
        f"routes:\n  - path: /api/**\n    origins: [{origin}]\n    supports_credentials: true\n"
    )
    key = "routes[0].origins[0].regex" if "regex" in origin else "routes[0].origins[0]"
    assert f"p.yaml:3 {key}: warning: lets every site under .{suffix} in" in text


@pytest.mark.parametrize(
    "origin",
    [
        '"https://*.example.com"',
        '"https://app.github.io"',  # one exact host there is fine
        r"{regex: '^https://[a-z]+\.example\.com$'}",
        r"{regex: '(?i)^https://app\.example\.com$'}",  # flags first: still anchored
        r"{regex: '^https://[^.]+\.example\.com(:[0-9]+)?$'}",  # a dot in a class is a dot
        r"{regex: '^https://[\w.-]+\.example\.com$'}",
    ],
)
def test_own_domain_origins_draw_no_origin_warning(origin: str) -> None:
    text = warnings_of(
        f"public_scheme: https\nroutes:\n  - path: /api/**\n    origins: [{origin}]\n"
    )
    assert "origins[0]" not in text, text


def test_a_regex_matching_null_is_said_to_never_allow_it() -> None:
    text = warnings_of("routes:\n  - path: /a\n    origins: [{regex: '^null$'}]\n")
    assert 'warning: matches "null", but a regex never allows it' in text
