"""The policy loader: schema, defaults, compilation, and errors naming file:line key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from proxy.loader import PolicyError, load_policy_file, load_policy_text

REPO = Path(__file__).resolve().parents[2]


def error_of(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "p.yaml")
    return caught.value


def test_shipped_policy_loads() -> None:
    policies = load_policy_file(REPO / "config" / "policies.yaml")
    assert policies.upstream == "http://127.0.0.1:5000"
    assert policies.listen == "0.0.0.0:8080"
    assert policies.admin == "127.0.0.1:9901"
    assert [route.rule.source for route in policies.route_list] == [
        "/api/**",
        "/public/**",
        r"^/v[0-9]+/public/",
    ]


def test_defaults_are_inherited_and_overridden() -> None:
    policies = load_policy_text(
        """
defaults:
  methods: [get, post]
  allow_headers: [X-A]
  max_age: 30
  enforce: false
routes:
  - path: /a
    origins: [http://a.test]
  - path: /b
    origins: [http://b.test]
    methods: [PUT]
    max_age: null
""",
        "p.yaml",
    )
    first, second = policies.route_list
    assert first.methods == ("GET", "POST")
    assert first.allow_headers == frozenset({"x-a"})
    assert first.max_age == 30 and not first.enforce
    assert second.methods == ("PUT",) and second.max_age is None
    assert dict(second.preflight_headers).get("Access-Control-Max-Age") is None


def test_builtin_defaults_match_the_design() -> None:
    (route,) = load_policy_text("routes: [{path: /x, origins: '*'}]").route_list
    assert route.methods == ("GET", "HEAD", "POST")
    assert route.allow_headers_listed == ("Content-Type",)
    assert route.max_age == 600
    assert route.enforce and not route.supports_credentials and route.wildcard_response
    policies = load_policy_text("routes: [{path: /x, origins: '*'}]")
    assert policies.timeouts.connect == 5 and policies.timeouts.read == 60
    assert policies.timeouts.client_header == 10
    assert policies.trust_forwarded_from == ()


def test_header_values_are_precomputed() -> None:
    (route,) = load_policy_text(
        """
routes:
  - path: /api/**
    origins: [http://a.test]
    methods: [GET, PUT]
    allow_headers: [Content-Type, Authorization]
    expose_headers: [X-Total-Count, X-Page]
    supports_credentials: true
    max_age: 120
"""
    ).route_list
    assert dict(route.preflight_headers) == {
        "Access-Control-Allow-Methods": "GET, PUT",
        "Access-Control-Allow-Headers": "Content-Type, Authorization",
        "Access-Control-Max-Age": "120",
        "Access-Control-Allow-Credentials": "true",
    }
    assert dict(route.actual_headers) == {
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Expose-Headers": "X-Total-Count, X-Page",
    }


@pytest.mark.parametrize(
    ("text", "line", "key", "message"),
    [
        ("routes:\n  - path: /a\n    origins: [x\n", 4, "(yaml)", "invalid YAML"),
        ("routes: [{path: /a, origins: '*', colour: red}]\n", 1, "routes[0].colour", "unknown key"),
        ("upstreams: http://x:1\nroutes: []\n", 1, "upstreams", "unknown key"),
        (
            "routes:\n  - path: /a\n    origins: '*'\n    supports_credentials: true\n",
            4,
            "routes[0].supports_credentials",
            "refused",
        ),
        (
            "defaults:\n  supports_credentials: true\nroutes:\n  - path: /a\n    origins: '*'\n",
            2,
            "defaults.supports_credentials",
            "refused",
        ),
        (
            "routes:\n  - path: /a\n    origins:\n"
            "      - http://ok.test\n      - regex: '^(http'\n",
            5,
            "routes[0].origins[1].regex",
            "invalid regular expression",
        ),
        (
            "routes:\n  - path: /a\n    origins:\n      - http://ok.test\n      - http://a.test/x\n",
            5,
            "routes[0].origins[1]",
            "is not an origin",
        ),
        ("routes:\n  - regex: '^/(a'\n    origins: '*'\n", 2, "routes[0].regex", "invalid regular"),
        (
            "routes:\n  - path: /a\n    origins: '*'\n    vary_header: false\n",
            4,
            "routes[0].vary_header",
            "always sends Vary",
        ),
        ("routes:\n  - path: /a\n", 2, "routes[0].origins", "missing"),
        ("routes:\n  - origins: '*'\n", 2, "routes[0]", "exactly one of path: or regex:"),
        ("routes:\n  - {path: a, origins: '*'}\n", 2, "routes[0].path", "starts with /"),
        ("timeouts: {connect: fast}\nroutes: []\n", 1, "timeouts.connect", "expected a number"),
        ("timeouts: {read: 0}\nroutes: []\n", 1, "timeouts.read", "greater than zero"),
        (
            "routes:\n  - {path: /a, origins: '*', methods: [GET, 'B D']}\n",
            2,
            "routes[0].methods[1]",
            "not a valid method",
        ),
        (
            "routes:\n  - {path: /a, origins: '*', max_age: -1}\n",
            2,
            "routes[0].max_age",
            "negative",
        ),
        (
            "routes:\n  - {path: /a, origins: '*', enforce: maybe}\n",
            2,
            "routes[0].enforce",
            "expected true, false or shadow",
        ),
        ("upstream: ftp://x\nroutes: []\n", 1, "upstream", "not of the form"),
        ("listen: 8080\nroutes: []\n", 1, "listen", "expected a non-empty string"),
        (
            "trust_forwarded_from: [10.0.0.0/33]\nroutes: []\n",
            1,
            "trust_forwarded_from[0]",
            "not a CIDR",
        ),
        (
            "routes:\n  - {path: /a, origins: '*'}\n  - {path: /a, origins: '*', path: /b}\n",
            3,
            "routes[1].path",
            "duplicate key",
        ),
        ("", 1, "(document)", "empty"),
        ("- a\n- b\n", 1, "(document)", "expected a mapping"),
        (
            "routes:\n  - path: /a\n    origins: ['*', http://a.test]\n",
            3,
            "routes[0].origins[0]",
            "whole value",
        ),
        (
            "routes:\n  - path: /a\n    origins: [https://*.*.test]\n",
            3,
            "routes[0].origins[0]",
            "wildcard",
        ),
    ],
)
def test_errors_name_file_line_and_key(text: str, line: int, key: str, message: str) -> None:
    error = error_of(text)
    assert (error.source, error.line, error.key) == ("p.yaml", line, key), str(error)
    assert message in error.message
    assert re.fullmatch(r"p\.yaml:\d+ \S+: .+", str(error), re.DOTALL)


def test_file_errors_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError, match=re.escape(f"{missing}:0 (file): cannot read")):
        load_policy_file(missing)
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"routes: []\n# \xff\n")
    with pytest.raises(PolicyError, match=r"bad\.yaml:2 \(file\): not valid UTF-8"):
        load_policy_file(bad)


def test_compiled_policy_is_immutable() -> None:
    policies = load_policy_text("routes: [{path: /x, origins: '*'}]")
    with pytest.raises(AttributeError):
        policies.upstream = "http://evil:1"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        policies.route_list[0].enforce = False  # type: ignore[misc]


def test_unmatched_and_empty_origins_are_least_privilege_keys() -> None:
    from proxy.policy import Unmatched

    policies = load_policy_text("unmatched: block\nroutes: [{path: /x, origins: []}]\n")
    assert policies.unmatched is Unmatched.BLOCK
    assert policies.route_list[0].origin_sources == ()
    assert load_policy_text("routes: []\n").unmatched is Unmatched.FORWARD
    error = error_of("unmatched: deny\nroutes: []\n")
    assert (error.line, error.key) == (1, "unmatched") and "forward or block" in error.message


def test_local_dev_policy_is_a_validated_policy_document() -> None:
    from proxy.loader import load_policy_bytes, local_dev_policy

    source = local_dev_policy(["http://localhost:3000", "https://A.test"], credentials=True)
    policies = load_policy_bytes(source.read_blocking(), source.source)
    (route,) = policies.route_list
    assert route.rule.source == "/**" and route.rule.matches("/") and route.rule.matches("/a/b")
    assert route.methods is None and route.allow_headers is None  # whatever is asked
    assert route.supports_credentials and route.enforce
    assert route.origins.allows("https://a.test") and not route.origins.allows("https://b.test")
    assert policies.listen == "127.0.0.1:8080" and policies.public_scheme == "http"
    assert policies.warnings == ()
    assert source.source.startswith("--allow-origin http://localhost:3000 https://A.test (")
    with pytest.raises(PolicyError, match=r"'a\.test' is not an origin"):
        local_dev_policy(["a.test"], credentials=False)
    with pytest.raises(PolicyError, match="refused"):
        local_dev_policy(["*"], credentials=True)
    assert local_dev_policy(["*"], credentials=False).read_blocking().count(b"origins: '*'") == 1
