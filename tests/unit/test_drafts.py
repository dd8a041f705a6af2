"""Drafts: located values, and how a route is laid over its defaults."""

from __future__ import annotations

import dataclasses

import pytest

from proxy.drafts import Located, OriginsDraft, PolicyError, PolicyFields, Where, builtin_fields

ROUTE = Where("p.yaml", 7, "routes[1]")
DEFAULTS = Where("p.yaml", 2, "defaults.max_age")


def test_where_formats_errors_and_warnings_as_file_line_key() -> None:
    error = ROUTE.error("bad")
    assert isinstance(error, PolicyError) and str(error) == "p.yaml:7 routes[1]: bad"
    assert (error.source, error.line, error.key, error.message) == ("p.yaml", 7, "routes[1]", "bad")
    assert ROUTE.warning("hm") == "p.yaml:7 routes[1]: warning: hm"


def test_a_route_over_defaults_over_builtins_keeps_each_values_location() -> None:
    route = PolicyFields(enforce=Located(False, Where("p.yaml", 9, "routes[1].enforce")))
    defaults = PolicyFields(max_age=Located(30, DEFAULTS), enforce=Located(True, DEFAULTS))
    merged = route.over(defaults).over(builtin_fields(ROUTE))
    assert merged.enforce == Located(False, Where("p.yaml", 9, "routes[1].enforce"))
    assert merged.max_age == Located(30, DEFAULTS)
    assert merged.methods == Located(("GET", "HEAD", "POST"), ROUTE)  # built-in, at the route
    assert merged.origins is None  # no built-in origins: validation refuses that


def test_builtins_set_every_field_but_origins() -> None:
    builtins = builtin_fields(ROUTE)
    unset = [f.name for f in dataclasses.fields(builtins) if getattr(builtins, f.name) is None]
    assert unset == ["origins"]


def test_origins_draft_compiles_and_keeps_entries_as_written() -> None:
    import re

    draft = OriginsDraft(
        False,
        exact=("http://a.test",),
        regexes=(Located(re.compile(r"^https://b\.test$"), ROUTE),),
        entries=(Located("http://A.test", ROUTE), Located(r"regex:^https://b\.test$", ROUTE)),
    )
    assert draft.sources == ("http://A.test", r"regex:^https://b\.test$")
    compiled = draft.compile()
    assert compiled.allows("http://a.test") and compiled.allows("https://b.test")
    assert not compiled.allows("https://c.test")


def test_drafts_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ROUTE.line = 1  # type: ignore[misc]
