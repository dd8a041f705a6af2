"""proxy/importer_fields.py: one Flask-CORS option set as cors-edge keys, unsafe parts refused."""

from __future__ import annotations

import re
from typing import Any

from proxy.importer_eval import Regex, Where
from proxy.importer_fields import ALL_METHODS, DEFAULTS, Raw, combine, translate

AT = Where("app.py", 3)


def _options(**given: Any) -> dict[str, Raw]:
    merged = {name: Raw(value, None, "default") for name, value in DEFAULTS.items()}
    merged.update({name: Raw(value, AT, f"{name}=") for name, value in given.items()})
    return merged


def test_flask_cors_defaults_are_written_out() -> None:
    fields = translate(_options())
    assert fields.origins == "*"
    assert sorted(fields.methods) == sorted(ALL_METHODS)
    assert fields.allow_headers == "*"
    assert fields.max_age is None and not fields.supports_credentials
    assert [r.kind for r in fields.refusals] == ["reflected-wildcard"]


def test_wildcard_with_credentials_is_refused_with_no_origin_left() -> None:
    fields = translate(_options(supports_credentials=True))
    assert fields.origins == []
    assert fields.supports_credentials
    assert [r.kind for r in fields.refusals] == ["wildcard-credentials"]
    assert fields.refusals[0].where == AT


def test_send_wildcard_keeps_a_plain_star_without_refusal() -> None:
    fields = translate(_options(send_wildcard=True))
    assert fields.origins == "*" and not fields.refusals


def test_null_is_refused_and_left_out() -> None:
    fields = translate(_options(origins=["null", "http://localhost:3000"]))
    assert fields.origins == [("exact", "http://localhost:3000")]
    assert [r.kind for r in fields.refusals] == ["null"]


def test_regex_origins_are_matched_in_full_and_case_insensitively() -> None:
    fields = translate(_options(origins=[r"https://.*\.example\.com", Regex(r"^http://a$")]))
    assert isinstance(fields.origins, list)
    [(kind, first), (_, second)] = fields.origins
    assert kind == "regex"
    assert re.fullmatch(first, "https://APP.example.com")
    assert not re.fullmatch(first, "https://app.example.com.evil.example")
    assert second == "^(?i:http://a)$"
    # Only the pattern without an end anchor changed meaning.
    assert [(r.kind, r.pattern) for r in fields.refusals] == [
        ("regex-anchor", r"https://.*\.example\.com")
    ]


def test_a_pasted_subdomain_wildcard_is_a_regex_to_flask_cors_and_is_named() -> None:
    fields = translate(_options(origins="https://*.example.com"))
    assert isinstance(fields.origins, list) and fields.origins[0][0] == "regex"
    assert any("never matched subdomains" in c for c in fields.comments)


def test_origins_that_never_matched_a_browser_are_left_out() -> None:
    fields = translate(_options(origins=["http://localhost:3000/", "https://a.example:443"]))
    assert fields.origins == []
    assert len(fields.no_effect) == 2


def test_lists_strings_and_unknown_options() -> None:
    fields = translate(
        _options(
            methods="get, put",
            allow_headers=["Content-Type", "X-.*"],
            expose_headers="X-Total-Count, X-Page",
            max_age="600",
            headers="Content-Type",
        )
    )
    assert fields.methods == ["GET", "PUT"]
    assert fields.allow_headers == ["Content-Type"]
    assert any("X-.*" in t for t in fields.todos)
    assert fields.expose_headers == ["X-Total-Count", "X-Page"]
    assert fields.max_age == 600
    assert any("headers= is not a Flask-CORS option" in n for n in fields.no_effect)


def test_stacked_decorators_take_the_preflight_keys_from_the_outer_one() -> None:
    outer = translate(
        _options(origins=["http://a", "http://b"], methods="GET, PUT", supports_credentials=True)
    )
    inner = translate(_options(origins=["http://a"], methods=["GET"], supports_credentials=True))
    both = combine(outer, inner)
    assert both.origins == [("exact", "http://a")]
    assert both.methods == ["GET", "PUT"]
    assert both.supports_credentials
    wider_inner = combine(outer, translate(_options(origins=["http://a", "http://c"])))
    assert wider_inner.origins == [("exact", "http://a")]
    assert not wider_inner.supports_credentials
    assert any("keeps only the origins both allow" in c for c in wider_inner.comments)
