from __future__ import annotations

import pytest

from proxy.routes import BadPath, PathRule, RouteTable, routing_path


@pytest.mark.parametrize(
    ("raw", "routed"),
    [
        ("/api/items", "/api/items"),
        ("/api//items", "/api/items"),
        ("//api///items/", "/api/items/"),
        ("/api/it%65ms", "/api/items"),
        ("/api/%2525", "/api/%25"),  # decoded exactly once, as the WSGI server does
        ("/api/a;b=c", "/api/a;b=c"),
        ("/API/items", "/API/items"),
    ],
)
def test_routing_path_is_what_flask_routes(raw: str, routed: str) -> None:
    assert routing_path(raw) == routed


@pytest.mark.parametrize(
    "raw",
    [
        "/public/../admin/users",
        "/public/./x",
        "/public/%2e%2e/admin",
        "/public/%2E%2E/admin",
        "/public/.%2e/admin",
        "/public/%2e/admin",
        "/public/..",
        "/public%2fadmin",
        "/public%2Fadmin",
        "/public%5cadmin",
        "/public\\admin",
        "/public/%00",
        "/public/\x00",
        "http://evil.example/x",
        "*",
    ],
)
def test_ambiguous_paths_are_refused(raw: str) -> None:
    with pytest.raises(BadPath):
        routing_path(raw)


def test_dotted_names_are_not_dot_segments() -> None:
    assert routing_path("/api/.well-known/x") == "/api/.well-known/x"
    assert routing_path("/api/file..txt") == "/api/file..txt"


def test_glob_semantics() -> None:
    deep = PathRule.glob("/api/**")
    assert deep.matches("/api") and deep.matches("/api/") and deep.matches("/api/a/b/c")
    assert not deep.matches("/apiary") and not deep.matches("/API/x")
    one = PathRule.glob("/api/*")
    assert one.matches("/api/items") and not one.matches("/api/items/1")
    middle = PathRule.glob("/users/*/posts")
    assert middle.matches("/users/42/posts") and not middle.matches("/users/4/2/posts")


def test_regex_rules_match_from_the_start() -> None:
    rule = PathRule.regex(r"^/v[0-9]+/public/")
    assert rule.matches("/v2/public/info")
    assert not rule.matches("/x/v2/public/info")
    flask_cors_style = PathRule.regex(r"/api/.*")
    assert flask_cors_style.matches("/api/x") and not flask_cors_style.matches("/x/api/x")


def test_first_match_wins_in_file_order_with_indexing() -> None:
    table = RouteTable(
        [
            (PathRule.glob("/api/admin/**"), "admin"),
            (PathRule.regex(r"^/(api|v1)/"), "regex-any"),
            (PathRule.glob("/api/**"), "api"),
            (PathRule.glob("/**"), "fallback"),
        ]
    )
    assert table.lookup("/api/admin/x") == "admin"
    assert table.lookup("/api/items") == "regex-any"
    assert table.lookup("/v1/x") == "regex-any"
    assert table.lookup("/other") == "fallback"


def test_indexed_lookup_agrees_with_linear_scan() -> None:
    rules = [(PathRule.glob(f"/svc{i}/**"), i) for i in range(200)]
    rules.insert(50, (PathRule.regex(r"^/svc1"), -1))
    table = RouteTable(rules)
    for path in ["/svc1/x", "/svc10/x", "/svc199/a/b", "/svc1", "/nope", "/svc150x/y"]:
        expected = next((value for rule, value in rules if rule.matches(path)), None)
        assert table.lookup(path) == expected, path


def test_decoded_newlines_do_not_escape_regex_or_glob_routes() -> None:
    path = routing_path("/api/items%0a")
    assert PathRule.glob("/api/**").matches(path)
    assert PathRule.regex(r"^/api/.*$").matches(path)
