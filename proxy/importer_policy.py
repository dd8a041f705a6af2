"""Flask-CORS usage (:mod:`proxy.importer`) to a commented cors-edge policy file.

Route order follows who answers in Flask-CORS: a view's ``@cross_origin`` first (it
marks the response, so no extension touches it), then a blueprint's ``CORS(bp)`` (its
``after_request`` runs before the app's), then the app-wide resources in Flask-CORS's
own order (literal keys, then regexes, most slashes and longest first).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .importer import Extension, Rule, Usage
from .importer_eval import Regex, Unknown
from .importer_fields import (
    ALL_METHODS,
    CONFIG_KEYS,
    DEFAULTS,
    REGEX_HINTS,
    Fields,
    Raw,
    Refusal,
    combine,
    source_text,
    translate,
)
from .loader import load_policy_text

_CONVERTERS = {
    "default": "[^/]+",
    "string": "[^/]+",
    "int": r"\d+",
    "float": r"\d+\.\d+",
    "path": "[^/].*?",
    "uuid": "[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}",
}
_RULE_PART = re.compile(r"<(?:(?P<conv>[a-zA-Z_]\w*)(?:\((?P<args>.*?)\))?:)?(?P<name>\w+)>")
_MATCH_ALL = frozenset({"/*", ".*", "/.*", "^/.*", "^/*", "*"})


@dataclass
class Route:
    key: str  # "path" or "regex"
    rule: str
    fields: Fields
    title: list[str]


@dataclass
class ImportResult:
    text: str
    routes: list[Route]
    refusals: list[tuple[int, Refusal]]  # (route index, refusal)
    todos: list[str] = field(default_factory=list)
    no_effect: list[str] = field(default_factory=list)


# --- layers -------------------------------------------------------------------------


def _config(usage: Usage, app: str | None, before: int | None) -> dict[str, Raw]:
    result: dict[str, Raw] = {}
    for seq, key, option in usage.config.get(app or "", []):
        name = CONFIG_KEYS.get(key)
        if name is None:
            usage.no_effect.append(
                f"{option.where}: {key} is not a Flask-CORS setting; it had "
                "no effect and is not carried over"
            )
        elif before is not None and seq > before:
            usage.no_effect.append(
                f"{option.where}: {key} was set after CORS() read the config; it had no effect"
            )
        elif option.value is not None:
            result[name] = Raw(option.value, option.where, key)
    return result


def _merge(*layers: dict[str, Raw]) -> dict[str, Raw]:
    merged = {name: Raw(value, None, "default") for name, value in DEFAULTS.items()}
    for layer in layers:
        merged.update(layer)
    return merged


def _kwargs(options: dict[str, Any], label: str) -> dict[str, Raw]:
    del label  # the where of each keyword says enough
    return {name: Raw(opt.value, opt.where, f"{name}=") for name, opt in options.items()}


# --- paths --------------------------------------------------------------------------


def _join(prefix: str | None, rule: str) -> str:
    if prefix is None:
        return rule
    return "/".join((prefix.rstrip("/"), rule.lstrip("/"))) if rule else prefix


def _full_rules(usage: Usage, rule: Rule) -> list[tuple[str, str | None]]:
    """The rule's full paths, with the app each is served by."""
    if rule.owner not in usage.blueprints:
        return [(rule.rule, rule.owner)]
    registrations = usage.registrations.get(rule.owner, [])
    if not registrations:
        usage.todos.append(
            f"{rule.where}: TODO: blueprint {rule.owner.split(':')[-1]} is not "
            "registered in the files read; its own url_prefix is assumed"
        )
        return [(_join(usage.blueprints[rule.owner], rule.rule), None)]
    out: list[tuple[str, str | None]] = []
    for app, prefix, _ in registrations:
        prefix = prefix if prefix is not None else usage.blueprints[rule.owner]
        out.append((_join(prefix, rule.rule), app))
    return out


def _rule_regex(usage: Usage, rule: str, where: object) -> str:
    out, position = [], 0
    for match in _RULE_PART.finditer(rule):
        out.append(re.escape(rule[position : match.start()]))
        conv = match["conv"] or "default"
        if conv == "any" and match["args"]:
            choices = [c.strip().strip("'\"") for c in match["args"].split(",")]
            out.append("(?:" + "|".join(re.escape(c) for c in choices) + ")")
        else:
            if conv not in _CONVERTERS:
                usage.todos.append(
                    f"{where}: TODO: converter {conv!r} is not known; taken as one path segment"
                )
            out.append(_CONVERTERS.get(conv, "[^/]+"))
        position = match.end()
    out.append(re.escape(rule[position:]))
    return "".join(out)


def _rule_route(usage: Usage, path: str, where: object, resource: Any = None) -> tuple[str, str]:
    if resource is None and "<" not in path and "*" not in path:
        return ("path", path)
    body = _rule_regex(usage, path, where)
    if resource is None or (isinstance(resource, str) and resource in _MATCH_ALL):
        return ("regex", f"^{body}$")
    if isinstance(resource, str) and REGEX_HINTS.isdisjoint(resource):
        return ("regex", f"^(?={re.escape(resource)}$){body}$")
    pattern = resource.pattern if isinstance(resource, Regex) else str(resource)
    return ("regex", f"^(?={pattern}){body}$")


# --- resources ----------------------------------------------------------------------


def _resources(value: Any) -> list[tuple[Any, dict[str, Any]]] | None:
    """Flask-CORS's parse_resources: (pattern, options) in the order it tries them."""

    def fix(key: Any) -> Any:
        return ".*" if key == "*" else key

    if isinstance(value, dict):
        pairs = [(fix(k), v if isinstance(v, dict) else {}) for k, v in value.items()]

        def order(pair: tuple[Any, Any]) -> tuple[int, int, int, int]:
            key = pair[0]
            text = key.pattern if isinstance(key, Regex) else str(key)
            group = (
                (1, 0)
                if isinstance(key, Regex)
                else ((1, 1) if not REGEX_HINTS.isdisjoint(text) else (0, 0))
            )
            return (*group, -text.count("/"), -len(text))

        return sorted(pairs, key=order)
    if isinstance(value, str | Regex):
        return [(fix(value), {})]
    if isinstance(value, list):
        return [(fix(item), {}) for item in value]
    return None


def _resource_route(key: Any) -> tuple[str, str, str] | None:
    if isinstance(key, str) and key in _MATCH_ALL:
        return ("path", "/**", f"Flask-CORS resource {source_text(key)}: every path")
    if isinstance(key, str) and REGEX_HINTS.isdisjoint(key):
        if not key.startswith("/"):
            return None
        return ("path", key, f"Flask-CORS resource {source_text(key)}: a literal, this path only")
    pattern = key.pattern if isinstance(key, Regex) else str(key)
    try:
        re.compile(pattern)
    except re.error:
        return None
    return (
        "regex",
        pattern,
        f"Flask-CORS resource {source_text(pattern)}: a regex matched from the start of the path",
    )


def _extension_routes(usage: Usage, ext: Extension, apps: list[Any]) -> list[Route]:
    label = f"CORS({ext.target.split(':')[-1]}) at {ext.where}"
    config = {} if ext.is_blueprint else _config(usage, ext.target, ext.seq)
    kwargs = _kwargs(ext.options, label)
    merged = _merge(config, kwargs)
    raw = merged["resources"]
    resources = None if isinstance(raw.value, Unknown) else _resources(raw.value)
    if resources is None:
        usage.todos.append(
            f"{raw.where or ext.where}: TODO: resources not evaluated; "
            f"{label} is not in this policy"
        )
        return []
    routes: list[Route] = []
    for key, options in resources:
        layer = {
            n: Raw(v, raw.where, f"resources[{source_text(key)}].{n}") for n, v in options.items()
        }
        fields = translate(_merge(config, kwargs, layer), ext.where)
        if ext.is_blueprint:
            routes += _blueprint_routes(usage, ext, key, fields, label, apps)
            continue
        found = _resource_route(key)
        if found is None:
            usage.todos.append(
                f"{ext.where}: TODO: resource {source_text(key)} never matches a path"
            )
            continue
        routes.append(Route(found[0], found[1], fields, [label, found[2]]))
    return routes


def _sample(path: str) -> str:
    return _RULE_PART.sub("1", path)


def _resource_matches(key: Any, path: str) -> bool:
    if isinstance(key, str) and REGEX_HINTS.isdisjoint(key):
        return key == path
    pattern = key.pattern if isinstance(key, Regex) else str(key)
    try:
        return re.match(pattern, path) is not None
    except re.error:
        return False


def _app_resources(usage: Usage, apps: list[Extension]) -> list[Any]:
    keys: list[Any] = []
    for ext in apps:
        merged = _merge(_config(usage, ext.target, ext.seq), _kwargs(ext.options, ""))
        keys += [key for key, _ in _resources(merged["resources"].value) or []]
    return keys


def _blueprint_routes(
    usage: Usage, ext: Extension, key: Any, fields: Fields, label: str, apps: list[Any]
) -> list[Route]:
    routes = []
    for rule in (r for r in usage.rules if r.owner == ext.target):
        for path, _ in _full_rules(usage, rule):
            sample = _sample(path)
            if "<" not in path and not _resource_matches(key, sample):
                continue  # this rule's one path is not under the resource
            kind, text = _rule_route(usage, path, rule.where, key)
            title = [label, f"resource {source_text(key)} on rule {path} ({rule.where})"]
            if any(_resource_matches(k, sample) for k in apps):
                title.append(
                    "TODO: origins this blueprint refused fell through to the app-wide "
                    "CORS in Flask-CORS; here the blueprint's policy alone decides"
                )
            if any(usage.config.get(app) for _, app in _full_rules(usage, rule) if app):
                title.append("a blueprint has no config: the app's CORS_* keys did not apply here")
            routes.append(Route(kind, text, fields, title))
    return routes


def _view_routes(usage: Usage) -> list[Route]:
    routes: list[Route] = []
    for view in usage.views:
        for rule, stack in view.stacks:
            if not stack:
                continue
            for path, app in _full_rules(usage, rule):
                config = _config(usage, app or next(iter(usage.apps), None), None)
                layers = [
                    _merge(config, _kwargs(opts, f"@cross_origin at {w}")) for opts, w in stack
                ]
                route = _view_route(usage, view.name, rule, path, layers, stack)
                if any(r.key == route.key and r.rule == route.rule for r in routes):
                    usage.todos.append(
                        f"{rule.where}: TODO: another decorated view has the rule {path} "
                        "(other methods); cors-edge applies the first one's policy to both"
                    )
                routes.append(route)
    return routes


def _view_route(
    usage: Usage,
    name: str,
    rule: Rule,
    path: str,
    layers: list[dict[str, Raw]],
    stack: tuple[Any, ...],
) -> Route:
    kind, text = _rule_route(usage, path, rule.where)
    methods = ", ".join(rule.methods or ("GET",))
    title = [f"@cross_origin on {name.split(':')[-1]} ({stack[-1][1]}), rule {path} [{methods}]"]
    answering = [m for m in layers if m["automatic_options"].value]
    actual = translate(layers[-1], stack[-1][1])
    _view_methods(actual, rule)
    if not answering:
        usage.todos.append(
            f"{stack[0][1]}: TODO: automatic_options=False: Flask answered this "
            "view's preflights without Flask-CORS; cors-edge answers them "
            "with the decorator's policy"
        )
        return Route(kind, text, actual, title)
    if len(layers) == 1 or answering[0] is layers[-1]:
        return Route(kind, text, actual, title)
    title.append(
        "stacked: the outer @cross_origin answered preflights, the inner one the actual requests"
    )
    preflight = translate(answering[0], stack[0][1])
    _view_methods(preflight, rule)
    return Route(kind, text, combine(preflight, actual), title)


def _view_methods(fields: Fields, rule: Rule) -> None:
    """Only the methods the view is routed for: Flask answers any other one 405 before the
    decorator runs, with no CORS headers, so its preflight led nowhere under Flask-CORS."""
    routed = set(rule.methods or ("GET",)) | {"OPTIONS"}
    if "GET" in routed:
        routed.add("HEAD")
    kept = [method for method in fields.methods if method in routed]
    if kept != fields.methods:
        fields.comments.append(
            f"methods limited to the view's own ({', '.join(sorted(routed))}): Flask answered "
            "the others 405 without CORS headers"
        )
        fields.methods = kept


def build_policy(usage: Usage, sources: list[str]) -> ImportResult:
    routes = _view_routes(usage)
    blueprints = [e for e in usage.extensions if e.is_blueprint]
    apps = [e for e in usage.extensions if not e.is_blueprint]
    app_keys = _app_resources(usage, apps)
    for ext in blueprints:
        routes += _extension_routes(usage, ext, app_keys)
    # Flask runs an app's after_request functions last-registered first.
    for ext in reversed(apps):
        routes += _extension_routes(usage, ext, [])
    if len(apps) > 1:
        usage.todos.append(
            f"{apps[0].where}: TODO: CORS() applied {len(apps)} times; where the "
            "last one refused an origin Flask-CORS tried the earlier ones"
        )
    from .importer_render import render

    text = render(routes, usage, sources)
    load_policy_text(text, "<imported>")  # what is written always loads
    refusals = [(i, r) for i, route in enumerate(routes) for r in route.fields.refusals]
    todos = list(dict.fromkeys(usage.todos + [t for r in routes for t in r.fields.todos]))
    no_effect = list(
        dict.fromkeys(usage.no_effect + [n for r in routes for n in r.fields.no_effect])
    )
    return ImportResult(text, routes, refusals, todos, no_effect)


__all__ = ["ALL_METHODS", "ImportResult", "build_policy"]
