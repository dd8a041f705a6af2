"""The YAML node walker: typed values, and failures naming file:line key."""

from __future__ import annotations

import pytest
import yaml

from proxy.drafts import PolicyError
from proxy.yamlwalk import Walker, compose, describe, is_null, join


def node(text: str) -> yaml.Node:
    root = compose(text, "w.yaml")
    assert root is not None
    return root


def test_compose_reports_invalid_yaml_with_its_line() -> None:
    with pytest.raises(PolicyError) as caught:
        compose("a: 1\nb: [x\n", "w.yaml")
    assert (caught.value.line, caught.value.key) == (3, "(yaml)")
    assert compose("", "w.yaml") is None


def test_mapping_refuses_unknown_duplicate_and_merge_keys() -> None:
    walk = Walker("w.yaml")
    with pytest.raises(PolicyError, match=r"w\.yaml:2 top\.b: unknown key"):
        walk.mapping(node("a: 1\nb: 2\n"), "top", frozenset({"a"}))
    with pytest.raises(PolicyError, match=r"w\.yaml:2 a: duplicate key"):
        walk.mapping(node("a: 1\na: 2\n"), "", frozenset({"a"}))
    with pytest.raises(PolicyError, match="plain names"):
        walk.mapping(node("base: &b {a: 1}\nx:\n  <<: *b\n").value[1][1], "x", frozenset({"a"}))


def test_typed_values() -> None:
    walk = Walker("w.yaml")
    fields = walk.mapping(node("s: x\nb: true\nn: 2.5\ni: 3\nz: null\n"), "", frozenset("sbniz"))
    assert walk.string(fields["s"][1], "s") == "x"
    assert walk.boolean(fields["b"][1], "b") is True
    assert walk.number(fields["n"][1], "n") == 2.5
    assert walk.number(fields["i"][1], "i", integer=True) == 3
    assert is_null(fields["z"][1]) and not is_null(fields["s"][1])
    with pytest.raises(PolicyError, match=r"w\.yaml:3 n: expected a whole number"):
        walk.number(fields["n"][1], "n", integer=True)
    with pytest.raises(PolicyError, match=r"w\.yaml:2 b: expected a non-empty string"):
        walk.string(fields["b"][1], "b")
    with pytest.raises(PolicyError, match=r"w\.yaml:1 \(document\): expected a list"):
        walk.sequence(node("a: 1\n"), "")


def test_keys_with_whitespace_are_shown_as_one_token() -> None:
    assert join("routes[0]", "a b") == 'routes[0]."a\\u0020b"'
    assert join("", "plain") == "plain"
    assert describe(node("[1]")) == "a list" and describe(node("{}")) == "a mapping"
