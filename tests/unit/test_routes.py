from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.routes import BadPath, PathRule, RouteTable, literal_first_segment, routing_path


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


@pytest.mark.parametrize(
    ("regex", "path"),
    [
        (r"^/api/*", "/apidocs"),  # a pasted Flask-CORS key r"/api/*": "/" zero or more times
        (r"^/api/*", "/api-v2/x"),
        (r"^/api/?", "/apix"),
        (r"^/api/{0,1}", "/api-v2"),
        (r"^/api\/*", "/apidocs"),
    ],
)
def test_regexes_whose_slash_is_optional_are_checked_for_every_segment(
    regex: str, path: str
) -> None:
    rules = [(PathRule.glob("/api/**"), "glob"), (PathRule.regex(regex), "regex")]
    assert PathRule.regex(regex).matches(path)
    assert RouteTable(rules).lookup(path) == "regex"


@pytest.mark.parametrize(
    ("pattern", "is_regex", "segment"),
    [
        ("/api/**", False, "api"),
        ("/api", False, "api"),
        ("/a*/x", False, None),
        (r"^/api/", True, "api"),
        (r"^/api\/x", True, "api"),
        (r"^/api/+", True, "api"),  # one or more slashes still ends the segment
        (r"^/api/*", True, None),
        (r"^/api/?x", True, None),
        (r"^/api/{1,}", True, None),
        (r"^/apis?/", True, None),
        (r"^/(api|v1)/", True, None),
    ],
)
def test_only_a_certain_first_segment_is_indexed(
    pattern: str, is_regex: bool, segment: str | None
) -> None:
    assert literal_first_segment(pattern, is_regex=is_regex) == segment


_PIECES = ["api", "apidocs", "api-v2", "v1", "x", "a", "b", ""]
_GLOB_PARTS = ["api", "apidocs", "v1", "x", "*", "**", "a*", "api*"]
# A regex is built as anchor, "/", a first segment, what follows it, and a tail, so
# that the forms the index has to get right (an optional slash, a quantified last
# letter, an alternation) come up often.
_SEGMENTS = ["api", "v1", "x", "v[0-9]+", "(a|b)", ""]
_AFTER_SEGMENT = ["/", "/*", "/?", "/+", "\\/", "\\/*", "/{0,1}", "s?", "-v2/", "docs", "", "$"]
_TAILS = ["", ".*", "x", "[a-z]+", "$", "(a|b)"]


def _glob() -> st.SearchStrategy[PathRule]:
    parts = st.lists(st.sampled_from(_GLOB_PARTS), min_size=0, max_size=3)
    return parts.map(lambda p: PathRule.glob("/" + "/".join(p)))


def _regex() -> st.SearchStrategy[PathRule]:
    parts = (
        st.sampled_from(["^", ""]),
        st.sampled_from(_SEGMENTS),
        st.sampled_from(_AFTER_SEGMENT),
        st.sampled_from(_TAILS),
    )
    texts = st.tuples(*parts).map(lambda p: f"{p[0]}/{p[1]}{p[2]}{p[3]}")
    return texts.filter(_compiles).map(PathRule.regex)


def _compiles(text: str) -> bool:
    try:
        re.compile(text)
    except re.error:
        return False
    return True


_PATHS = st.lists(st.sampled_from(_PIECES), min_size=0, max_size=3).map(lambda p: "/" + "/".join(p))


@settings(max_examples=300, deadline=None)
@given(
    rules=st.lists(st.one_of(_glob(), _regex()), min_size=1, max_size=8),
    paths=st.lists(_PATHS, max_size=12),
)
def test_the_index_agrees_with_a_plain_linear_scan(rules: list[PathRule], paths: list[str]) -> None:
    entries = [(rule, index) for index, rule in enumerate(rules)]
    table = RouteTable(entries)
    for path in paths:
        expected = next((value for rule, value in entries if rule.matches(path)), None)
        assert table.lookup(path) == expected, (path, [rule.source for rule in rules])


def test_a_raw_fragment_in_the_path_is_refused() -> None:
    # The upstream hop and gunicorn cut a raw "#" off; the policy would not.
    for raw in ("/api/items#.png", "/#", "/a#b/c"):
        with pytest.raises(BadPath):
            routing_path(raw)
    assert routing_path("/img/a%23b.png") == "/img/a#b.png"  # decoded once, like Flask
