"""The parse step for CORS keys: located values, as written."""

from __future__ import annotations

import pytest

from proxy.drafts import PolicyError, PolicyFields, Where
from proxy.policyfields import POLICY_KEYS, FieldReader
from proxy.yamlwalk import Walker, compose


def fields_of(text: str) -> PolicyFields:
    walk = Walker("f.yaml")
    root = compose(text, "f.yaml")
    assert root is not None
    return FieldReader(walk).fields(walk.mapping(root, "r", POLICY_KEYS | {"path"}), "r")


def test_each_value_carries_its_line_and_key() -> None:
    fields = fields_of(
        "path: /x\norigins:\n  - http://A.test\n  - regex: ^https://b\\.test$\n"
        "methods: get, put\nmax_age: null\nenforce: false\n"
    )
    assert fields.origins is not None and fields.origins.where == Where("f.yaml", 3, "r.origins")
    origins = fields.origins.value
    assert origins.exact == ("http://a.test",)
    assert [e.where.key for e in origins.entries] == ["r.origins[0]", "r.origins[1].regex"]
    assert origins.sources == ("http://A.test", r"regex:^https://b\.test$")
    assert fields.methods is not None and fields.methods.value == ("GET", "PUT")
    assert fields.max_age is not None and fields.max_age.value is None
    assert fields.enforce is not None and fields.enforce.value is False
    assert fields.enforce.where == Where("f.yaml", 7, "r.enforce")
    assert fields.allow_headers is None  # left out: the merge step fills it


def test_an_empty_origin_list_allows_no_origin() -> None:
    fields = fields_of("origins: []\n")
    assert fields.origins is not None and fields.origins.value.entries == ()
    compiled = fields.origins.value.compile()
    assert not compiled.any_origin and not compiled.allows("http://a.test")


def test_star_means_whatever_the_browser_asks() -> None:
    fields = fields_of("origins: '*'\nmethods: '*'\nallow_headers: '*'\n")
    assert fields.origins is not None and fields.origins.value.any_origin
    assert fields.methods is not None and fields.methods.value is None
    assert fields.allow_headers is not None and fields.allow_headers.value is None


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("vary_header: false\n", "r.vary_header", "always sends Vary"),
        ("origins: [http://a.test/x]\n", "r.origins[0]", "is not an origin"),
        ("allow_headers: [A, '*']\n", "r.allow_headers[1]", "whole value"),
        ("origins: [{regexp: x}]\n", "r.origins[0].regexp", "unknown key"),
    ],
)
def test_refusals_name_the_key(text: str, key: str, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        fields_of(text)
    assert caught.value.key == key and message in caught.value.message
