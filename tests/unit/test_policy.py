"""The immutable model: header values precomputed once per route, nothing mutable."""

from __future__ import annotations

import dataclasses

import pytest

from proxy.origins import OriginSet
from proxy.policy import Config, Limits, RoutePolicy, Timeouts
from proxy.routes import PathRule, RouteTable


def route(**overrides: object) -> RoutePolicy:
    values: dict[str, object] = {
        "index": 0,
        "line": 3,
        "rule": PathRule.glob("/api/**"),
        "origins": OriginSet.build(exact=["http://a.test"]),
        "origin_sources": ("http://a.test",),
        "methods": ("GET", "PUT"),
        "allow_headers": frozenset({"content-type", "x-a"}),
        "allow_headers_listed": ("Content-Type", "X-A"),
        "expose_headers": ("X-Total",),
        "supports_credentials": True,
        "max_age": 120,
        "send_wildcard": True,
        "allow_private_network": False,
        "enforce": True,
    }
    values.update(overrides)
    return RoutePolicy(**values)  # type: ignore[arg-type]


def test_header_values_are_computed_when_the_route_is_built() -> None:
    policy = route()
    assert policy.name == "routes[0] path /api/**"
    assert policy.preflight_headers == (
        ("Access-Control-Allow-Methods", "GET, PUT"),
        ("Access-Control-Allow-Headers", "Content-Type, X-A"),
        ("Access-Control-Max-Age", "120"),
        ("Access-Control-Allow-Credentials", "true"),
    )
    assert policy.actual_headers == (
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Expose-Headers", "X-Total"),
    )
    assert policy.methods_set == frozenset({"GET", "PUT"}) and not policy.wildcard_response


def test_star_lists_and_null_max_age_emit_nothing_precomputed() -> None:
    policy = route(
        rule=PathRule.regex("^/v1/"),
        origins=OriginSet.build(any_origin=True),
        methods=None,
        allow_headers=None,
        allow_headers_listed=(),
        expose_headers=(),
        supports_credentials=False,
        max_age=None,
    )
    assert policy.name == "routes[0] regex ^/v1/"
    assert policy.preflight_headers == () and policy.actual_headers == ()
    assert policy.wildcard_response and policy.methods_set == frozenset()


def test_reflecting_star_is_not_a_wildcard_response() -> None:
    policy = route(origins=OriginSet.build(any_origin=True), send_wildcard=False)
    assert not policy.wildcard_response


def test_model_is_immutable() -> None:
    policy = route()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.enforce = False  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Timeouts().read = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Limits().max_headers = 1  # type: ignore[misc]
    config = Config(
        source="s",
        sha256="0",
        upstream="http://127.0.0.1:5000",
        listen="127.0.0.1:0",
        admin="127.0.0.1:0",
        timeouts=Timeouts(),
        limits=Limits(),
        trust_forwarded_from=(),
        routes=RouteTable([(policy.rule, policy)]),
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.upstream = "http://evil:1"  # type: ignore[misc]
    assert config.route_list == (policy,)
