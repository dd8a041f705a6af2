"""proxy/importer_policy.py: routes in Flask-CORS's order, URL rules as Werkzeug routes them."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from flask_cors.core import get_regexp_pattern, parse_resources
from werkzeug.exceptions import NotFound
from werkzeug.routing import Map, RequestRedirect, Rule

from proxy.importer import Usage as _Usage
from proxy.importer import read_sources
from proxy.importer_eval import Regex
from proxy.importer_policy import _resources, _rule_regex, build_policy
from proxy.loader import load_policy_text

RESOURCES = {
    r"/api/*": {},
    "/api/health": {},
    r"/api/v1/users/*": {},
    "*": {},
    r"/api/v1/.*": {},
    "/status": {},
}


def test_resource_order_is_flask_cors_own() -> None:
    ours = [key if isinstance(key, str) else key.pattern for key, _ in _resources(RESOURCES) or []]
    theirs = [get_regexp_pattern(pattern) for pattern, _ in parse_resources(RESOURCES)]
    assert ours == theirs


def test_compiled_resource_keys_sort_before_regex_strings() -> None:
    compiled = {r"/a/*": {}, Regex(r"/b"): {}, "/c": {}}
    order = [k if isinstance(k, str) else "re:" + k.pattern for k, _ in _resources(compiled) or []]
    theirs = parse_resources({r"/a/*": {}, re.compile(r"/b"): {}, "/c": {}})
    assert order == ["/c", "re:/b", "/a/*"]
    assert [get_regexp_pattern(p) for p, _ in theirs] == ["/c", "/b", "/a/*"]


def test_rule_regexes_match_what_werkzeug_routes() -> None:
    rules = [
        "/items/<int:item_id>",
        "/files/<path:name>",
        "/users/<name>/posts",
        "/f/<float:x>",
        "/pick/<any(a, 'b'):which>",
        "/u/<uuid:id>",
    ]
    paths = [
        "/items/12", "/items/x", "/items/", "/files/a/b.txt", "/files/", "/users/ann/posts",
        "/users/a/b/posts", "/f/1.5", "/f/1", "/pick/a", "/pick/b", "/pick/c",
        "/u/12345678-1234-1234-1234-123456789abc", "/u/nope",
    ]  # fmt: skip
    usage = _Usage()
    for rule in rules:
        urls = Map([Rule(rule, endpoint="e")]).bind("x")
        ours = re.compile(f"^{_rule_regex(usage, rule, 'here')}$")
        for path in paths:
            try:
                urls.match(path)
                routed = True
            except (NotFound, RequestRedirect):  # a redirect: not this rule's path as given
                routed = False
            assert (ours.match(path) is not None) == routed, (rule, path)


def test_decorated_views_come_before_app_wide_resources(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(
        textwrap.dedent("""
        from flask import Flask
        from flask_cors import CORS, cross_origin
        app = Flask(__name__)
        CORS(app, resources={r"/api/*": {"origins": ["http://a.example"]}})

        @app.route("/api/special/<int:n>", methods=["GET", "PUT"])
        @cross_origin(origins=["http://b.example"])
        def special(n):
            return ""
    """)
    )
    result = build_policy(read_sources([app]), [str(app)])
    config = load_policy_text(result.text)
    rules = [policy.rule.source for policy in config.route_list]
    assert rules == [r"^/api/special/\d+$", "/api/*"]
    assert config.route_list[0].methods == ("GET", "HEAD", "OPTIONS", "PUT")
