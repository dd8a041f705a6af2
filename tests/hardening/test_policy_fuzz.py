"""Fuzzing the policy loader: random YAML built from the schema's keys plus junk.

Whatever the document, ``load_policy_text`` ends in a valid :class:`Config` or a
:class:`PolicyError` whose text is ``file:line key: message`` — never another
exception.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy import loader
from proxy.loader import PolicyError, load_policy_text
from proxy.policy import Config

ERROR_FORMAT = re.compile(r"^\S+:\d+ \S+: .+", re.DOTALL)

# The schema's own key sets, so a key added to the loader is fuzzed too.
TOP_KEYS = sorted(loader._TOP_KEYS)
TIMEOUT_KEYS = sorted(loader._TIMEOUT_KEYS)
LIMIT_KEYS = sorted(loader._LIMIT_KEYS)
POLICY_KEYS = sorted(loader._POLICY_KEYS)
ROUTE_KEYS = sorted(loader._ROUTE_KEYS)
JUNK_KEYS = ["", "x", "Origins", "path ", "a b", "ünï", "1", "null", "<<", "*", "- x", "k:v"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "*",
            "null",
            "GET",
            "get, post",
            "Content-Type",
            "X Y",
            "http://localhost:3000",
            "https://*.example.com",
            "https://*.*.example.com",
            "https://app.example.com/",
            "unix:/tmp/x.sock",
            "http://127.0.0.1:5000",
            "127.0.0.1:8080",
            "[::1]:99999",
            "0.0.0.0/0",
            "10.0.0.0/33",
            "/api/**",
            "/api/*",
            "api",
            "^/v[0-9]+/",
            "(unclosed",
            "[a-",
            "\\",
            "",
            " ",
            "é",
            "\x00",
        ]
    ),
    st.text(max_size=12),
)


def values(depth: int) -> st.SearchStrategy[Any]:
    if depth <= 0:
        return scalars
    inner = values(depth - 1)
    return st.one_of(
        scalars,
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(ROUTE_KEYS + JUNK_KEYS + ["regex"]), inner, max_size=3),
    )


def section(keys: list[str], depth: int = 1) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(keys + JUNK_KEYS[:4]), values(depth), max_size=5)


origins = st.one_of(
    scalars,
    st.lists(
        st.one_of(scalars, st.fixed_dictionaries({"regex": scalars}), values(1)),
        max_size=4,
    ),
)
route = st.fixed_dictionaries(
    {},
    optional={
        "path": scalars,
        "regex": scalars,
        "origins": origins,
        "methods": values(1),
        "allow_headers": values(1),
        "expose_headers": values(1),
        "supports_credentials": scalars,
        "max_age": scalars,
        "send_wildcard": scalars,
        "vary_header": scalars,
        "allow_private_network": scalars,
        "enforce": scalars,
        "junk": scalars,
        "a b": scalars,
    },
)
documents = st.fixed_dictionaries(
    {},
    optional={
        "upstream": scalars,
        "listen": scalars,
        "admin": scalars,
        "timeouts": st.one_of(section(TIMEOUT_KEYS, 0), values(1)),
        "limits": st.one_of(section(LIMIT_KEYS, 0), values(1)),
        "trust_forwarded_from": st.one_of(st.lists(scalars, max_size=3), values(1)),
        "defaults": st.one_of(section(POLICY_KEYS), values(1)),
        "routes": st.one_of(st.lists(route, max_size=3), values(1)),
        "junk": values(1),
    },
)


def _check(text: str) -> None:
    try:
        result = load_policy_text(text, "fuzz.yaml")
    except PolicyError as error:
        assert ERROR_FORMAT.match(str(error)), repr(str(error))
        assert error.line >= 0
        return
    assert isinstance(result, Config)
    assert result.source == "fuzz.yaml"


@settings(max_examples=600, deadline=None)
@given(documents)
def test_random_policy_trees_load_or_fail_cleanly(document: dict[str, Any]) -> None:
    _check(yaml.safe_dump(document, allow_unicode=True, default_flow_style=False))


@settings(max_examples=300, deadline=None)
@given(
    documents,
    st.integers(0, 400),
    st.sampled_from(
        [
            "",
            ":",
            "- ",
            "{",
            "[",
            "&a",
            "*a",
            "!!python/object:os.system",
            "\t",
            "'",
            '"',
            "? ",
            "<<: *a",
            "%YAML 1.1\n---\n",
        ]
    ),
)
def test_mangled_yaml_fails_cleanly(document: dict[str, Any], position: int, junk: str) -> None:
    text = yaml.safe_dump(document, allow_unicode=True)
    position = min(position, len(text))
    _check(text[:position] + junk + text[position:])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_fails_cleanly(text: str) -> None:
    _check(text)


def test_known_documents() -> None:
    """A few documents that exercise the error paths fuzzing found hard to reach."""
    for text in [
        "routes: []",
        "routes:\n  - path: /x\n    origins: '*'\n    supports_credentials: true",
        "routes:\n  - path: /x\n    origins: [a]",
        "routes:\n  - {path: /x, origins: [{regex: '(' }]}",
        "a b: 1\nroutes: []",
        "? [a, b]\n: 1",
        "&a x: 1\n<<: *a",
        "routes: !!binary aGVsbG8=",
        "limits: {max_body_bytes: .nan}",
        "timeouts: {read: .inf}\nroutes: [{path: /, origins: '*'}]",
        "---\n---\n",
        # explicitly tagged scalars PyYAML cannot build (fuzzing found the first)
        "listen: !!python/object:os.systemnull ''",
        "routes: [{path: /x, origins: [!!foo a]}]",
        "timeouts: {read: !!int abc}",
        "routes: [{path: /x, origins: '*', methods: [!!bool maybe]}]",
        "routes: [{path: /x, origins: '*', max_age: !!timestamp x}]",
    ]:
        _check(text)
