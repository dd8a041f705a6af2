"""The policy loader: YAML text in, an immutable, pre-compiled :class:`Config` out.

Loading is all-or-nothing. Every error names the file, the line and the key path
(``config/policies.yaml:14 routes[0].origins[2]: ...``). PyYAML's node marks give the
lines, so the document is composed to nodes and validated node by node.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .origins import (
    OriginError,
    OriginSet,
    SubdomainWildcard,
    normalise_configured_origin,
)
from .policy import TOKEN_RE, Config, Limits, RoutePolicy, Timeouts
from .routes import PathRule, RouteTable

CHROMIUM_MAX_AGE_CAP = 7200  # seconds; Chromium clamps Access-Control-Max-Age to this
FIREFOX_MAX_AGE_CAP = 86400

T = TypeVar("T")


# libyaml's parser when PyYAML was built with it (ten times faster on big files);
# both give the node marks every error message needs.
_COMPOSER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_CONSTRUCTOR_LOCK = threading.Lock()


class PolicyError(ValueError):
    """A policy file is refused. ``str()`` is ``file:line key: message``."""

    def __init__(self, source: str, line: int, key: str, message: str) -> None:
        self.source = source
        self.line = line
        self.key = key
        self.message = message
        super().__init__(f"{source}:{line} {key}: {message}")


# --- node walking -------------------------------------------------------------


class _Walker:
    """Typed access to YAML nodes that raises :class:`PolicyError` with file:line:key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, node: yaml.Node, key: str, message: str) -> PolicyError:
        return PolicyError(self.source, node.start_mark.line + 1, key or "(document)", message)

    def mapping(
        self, node: yaml.Node, key: str, allowed: frozenset[str]
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, key, f"expected a mapping, got {_describe(node)}")
        result: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            name = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            child = _join(key, str(name))
            if not isinstance(name, str) or key_node.tag == "tag:yaml.org,2002:merge":
                raise self.fail(key_node, key, "keys must be plain names")
            if name not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.fail(key_node, child, f"unknown key (expected one of: {known})")
            if name in result:
                raise self.fail(key_node, child, "duplicate key")
            result[name] = (key_node, value_node)
        return result

    def sequence(self, node: yaml.Node, key: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, key, f"expected a list, got {_describe(node)}")
        return list(node.value)

    def scalar(self, node: yaml.Node, key: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, key, f"expected a single value, got {_describe(node)}")
        return _construct(node)

    def string(self, node: yaml.Node, key: str) -> str:
        value = self.scalar(node, key)
        if not isinstance(value, str) or not value:
            raise self.fail(node, key, f"expected a non-empty string, got {_describe(node)}")
        return value

    def boolean(self, node: yaml.Node, key: str) -> bool:
        value = self.scalar(node, key)
        if not isinstance(value, bool):
            raise self.fail(node, key, f"expected true or false, got {_describe(node)}")
        return value

    def number(self, node: yaml.Node, key: str, *, integer: bool = False) -> float:
        value = self.scalar(node, key)
        valid = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not valid or value != value:
            kind = "a whole number" if integer else "a number"
            raise self.fail(node, key, f"expected {kind}, got {_describe(node)}")
        if value < 0:
            raise self.fail(node, key, "must not be negative")
        return float(value)


def _construct(node: yaml.Node) -> Any:
    """The Python value of a scalar node, resolved by its tag as yaml.safe_load would."""
    constructor = _CONSTRUCTOR
    with _CONSTRUCTOR_LOCK:  # reloads compile on a worker thread
        try:
            return constructor.construct_object(node, deep=True)
        finally:
            constructor.constructed_objects.clear()
            constructor.recursive_objects.clear()


def _join(parent: str, child: str) -> str:
    # A key from the file is shown as one token (JSON-quoted when it holds whitespace
    # or controls), so an error always reads ``file:line key: message``.
    if not child or any(ch.isspace() or not ch.isprintable() for ch in child):
        child = json.dumps(child).replace(" ", "\\u0020")
    return f"{parent}.{child}" if parent else child


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag.endswith(":null"):
        return "nothing (null)"
    return repr(node.value)


# --- schema -------------------------------------------------------------------

_TOP_KEYS = frozenset(
    {"upstream", "listen", "admin", "timeouts", "limits", "trust_forwarded_from", "defaults"}
    | {"routes"}
)
_TIMEOUT_KEYS = frozenset(
    {"connect", "read", "client_header", "client_body", "keepalive", "upstream_idle"}
    | {"pool_wait"}
)
_LIMIT_KEYS = frozenset(
    {"max_body_bytes", "max_header_bytes", "max_headers", "max_upstream_connections"}
    | {"max_upstream_header_line", "max_upstream_header_bytes"}
)
_POLICY_KEYS = frozenset(
    {
        "origins",
        "methods",
        "allow_headers",
        "expose_headers",
        "supports_credentials",
        "max_age",
        "send_wildcard",
        "vary_header",
        "allow_private_network",
        "enforce",
    }
)
_ROUTE_KEYS = _POLICY_KEYS | {"path", "regex"}

_BUILTIN_DEFAULTS: dict[str, Any] = {
    "methods": ("GET", "HEAD", "POST"),
    "allow_headers": ("Content-Type",),
    "expose_headers": (),
    "supports_credentials": False,
    "max_age": 600,
    "send_wildcard": True,
    "allow_private_network": False,
    "enforce": True,
}

_ADDRESS_RE = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]*):(?P<port>[0-9]{1,5})")
_UPSTREAM_RE = re.compile(r"(?:https?://[^\s/?#]+/?|unix:/\S+)")


@dataclass(slots=True)
class _Origins:
    """Parsed ``origins`` value, with the node each entry came from for lint messages."""

    any_origin: bool
    exact: list[str]
    wildcards: list[SubdomainWildcard]
    regexes: list[re.Pattern[str]]
    sources: list[str]
    regex_nodes: list[tuple[str, yaml.Node, str]]  # (key, node, pattern)
    node: yaml.Node | None = None

    def compile(self) -> OriginSet:
        return OriginSet.build(
            any_origin=self.any_origin,
            exact=self.exact,
            wildcards=self.wildcards,
            regexes=self.regexes,
        )


class _PolicyReader:
    def __init__(self, source: str) -> None:
        self.walk = _Walker(source)
        self.source = source
        self.warnings: list[str] = []
        self.origins_lines: dict[int, int] = {}  # route index -> line of its origins

    def warn(self, node: yaml.Node, key: str, message: str) -> None:
        self.warnings.append(f"{self.source}:{node.start_mark.line + 1} {key}: warning: {message}")

    # policy fields ------------------------------------------------------------

    def origins(self, node: yaml.Node, key: str) -> _Origins:
        parsed = _Origins(False, [], [], [], [], [], node)
        if isinstance(node, yaml.ScalarNode) and _construct(node) == "*":
            parsed.any_origin = True
            parsed.sources.append("*")
            return parsed
        entries = [node] if isinstance(node, yaml.ScalarNode) else self.walk.sequence(node, key)
        if not entries:
            raise self.walk.fail(node, key, 'no origins listed; use "*" or list origins')
        for position, entry in enumerate(entries):
            entry_key = f"{key}[{position}]" if not isinstance(node, yaml.ScalarNode) else key
            if isinstance(entry, yaml.MappingNode):
                fields = self.walk.mapping(entry, entry_key, frozenset({"regex"}))
                if "regex" not in fields:
                    raise self.walk.fail(entry, entry_key, "expected {regex: PATTERN}")
                regex_node = fields["regex"][1]
                regex_key = f"{entry_key}.regex"
                pattern = self.walk.string(regex_node, regex_key)
                parsed.regexes.append(self.compile_regex(regex_node, regex_key, pattern))
                parsed.regex_nodes.append((regex_key, regex_node, pattern))
                parsed.sources.append(f"regex:{pattern}")
                continue
            text = self.walk.string(entry, entry_key)
            if text == "*":
                raise self.walk.fail(entry, entry_key, '"*" must be the whole value: origins: "*"')
            try:
                if "://*." in text or "*" in text:
                    parsed.wildcards.append(SubdomainWildcard.parse(text))
                else:
                    parsed.exact.append(normalise_configured_origin(text))
            except OriginError as error:
                raise self.walk.fail(entry, entry_key, str(error)) from None
            if text == "null":
                self.warn(
                    entry,
                    entry_key,
                    '"null" is sent by sandboxed iframes, file: pages and some redirects; '
                    "any site can produce it, so allowing it is nearly allowing everyone",
                )
            parsed.sources.append(text)
        return parsed

    def compile_regex(self, node: yaml.Node, key: str, pattern: str) -> re.Pattern[str]:
        try:
            return re.compile(pattern)
        except re.error as error:
            raise self.walk.fail(node, key, f"invalid regular expression: {error}") from None

    def token_list(
        self, node: yaml.Node, key: str, *, what: str, upper: bool
    ) -> tuple[str, ...] | None:
        """A list of HTTP tokens (methods or header names), or ``None`` for ``"*"``."""
        if isinstance(node, yaml.ScalarNode):
            value = _construct(node)
            if value == "*":
                return None
            if not isinstance(value, str):
                raise self.walk.fail(node, key, f"expected a list of {what}, got {_describe(node)}")
            items: list[tuple[yaml.Node, str, str]] = [
                (node, key, part.strip()) for part in value.split(",") if part.strip()
            ]
        else:
            items = [
                (item, f"{key}[{i}]", self.walk.string(item, f"{key}[{i}]"))
                for i, item in enumerate(self.walk.sequence(node, key))
            ]
        result: list[str] = []
        seen: set[str] = set()
        for item_node, item_key, text in items:
            if text == "*":
                raise self.walk.fail(item_node, item_key, '"*" must be the whole value: "*"')
            if not TOKEN_RE.fullmatch(text):
                raise self.walk.fail(item_node, item_key, f"{text!r} is not a valid {what[:-1]}")
            value = text.upper() if upper else text
            if value.lower() not in seen:
                seen.add(value.lower())
                result.append(value)
        return tuple(result)

    def policy_fields(
        self, fields: dict[str, tuple[yaml.Node, yaml.Node]], key: str
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, (_, node) in fields.items():
            child = _join(key, name)
            if name == "origins":
                values[name] = self.origins(node, child)
            elif name == "methods":
                values[name] = self.token_list(node, child, what="methods", upper=True)
            elif name in ("allow_headers", "expose_headers"):
                values[name] = self.token_list(node, child, what="header names", upper=False)
            elif name == "max_age":
                if isinstance(node, yaml.ScalarNode) and _construct(node) is None:
                    values[name] = None
                else:
                    values[name] = int(self.walk.number(node, child, integer=True))
            elif name == "vary_header":
                if not self.walk.boolean(node, child):
                    raise self.walk.fail(
                        node,
                        child,
                        "cors-edge always sends Vary where the answer varies, so shared "
                        "caches never serve one origin's answer to another; remove this key",
                    )
            else:
                values[name] = self.walk.boolean(node, child)
            values[f"_where_{name}"] = (node, child)
        return values

    # whole file ---------------------------------------------------------------

    def read(self, root: yaml.Node | None) -> dict[str, Any]:
        if root is None:
            raise PolicyError(self.source, 1, "(document)", "the policy file is empty")
        top = self.walk.mapping(root, "", _TOP_KEYS)
        result: dict[str, Any] = {}
        for name in ("upstream", "listen", "admin"):
            if name in top:
                node = top[name][1]
                text = self.walk.string(node, name)
                pattern = _UPSTREAM_RE if name == "upstream" else _ADDRESS_RE
                if not pattern.fullmatch(text) or (
                    name != "upstream" and int(text.rsplit(":", 1)[1]) > 65535
                ):
                    expected = (
                        "http://host:port or unix:/path.sock" if name == "upstream" else "host:port"
                    )
                    raise self.walk.fail(node, name, f"{text!r} is not of the form {expected}")
                result[name] = text
        result["timeouts"] = self.section(top, "timeouts", _TIMEOUT_KEYS, Timeouts, integer=False)
        result["limits"] = self.section(top, "limits", _LIMIT_KEYS, Limits, integer=True)
        result["trust_forwarded_from"] = self.networks(top)
        defaults: dict[str, Any] = dict(_BUILTIN_DEFAULTS)
        if "defaults" in top:
            node = top["defaults"][1]
            defaults.update(
                self.policy_fields(self.walk.mapping(node, "defaults", _POLICY_KEYS), "defaults")
            )
        if "routes" not in top:
            raise self.walk.fail(root, "routes", "missing; list at least one route")
        routes_node = top["routes"][1]
        route_nodes = self.walk.sequence(routes_node, "routes")
        policies = [
            self.route(node, f"routes[{i}]", i, defaults) for i, node in enumerate(route_nodes)
        ]
        self.lint(policies)
        result["routes"] = RouteTable([(policy.rule, policy) for policy in policies])
        return result

    def section(
        self,
        top: dict[str, tuple[yaml.Node, yaml.Node]],
        name: str,
        keys: frozenset[str],
        cls: Callable[..., T],
        *,
        integer: bool,
    ) -> T:
        if name not in top:
            return cls()
        fields = self.walk.mapping(top[name][1], name, keys)
        values: dict[str, Any] = {}
        for key, (_, node) in fields.items():
            child = f"{name}.{key}"
            if key == "max_body_bytes" and _construct(node) is None:
                values[key] = None
                continue
            number = self.walk.number(node, child, integer=integer)
            if number <= 0 and key not in ("max_body_bytes",):
                raise self.walk.fail(node, child, "must be greater than zero")
            values[key] = int(number) if integer else number
        return cls(**values)

    def networks(
        self, top: dict[str, tuple[yaml.Node, yaml.Node]]
    ) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        if "trust_forwarded_from" not in top:
            return ()
        node = top["trust_forwarded_from"][1]
        networks = []
        for i, item in enumerate(self.walk.sequence(node, "trust_forwarded_from")):
            key = f"trust_forwarded_from[{i}]"
            text = self.walk.string(item, key)
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError as error:
                raise self.walk.fail(item, key, f"not a CIDR: {error}") from None
        return tuple(networks)

    def route(self, node: yaml.Node, key: str, index: int, defaults: dict[str, Any]) -> RoutePolicy:
        fields = self.walk.mapping(node, key, _ROUTE_KEYS)
        has_path, has_regex = "path" in fields, "regex" in fields
        if has_path == has_regex:
            raise self.walk.fail(node, key, "a route needs exactly one of path: or regex:")
        rule_name = "path" if has_path else "regex"
        rule_node = fields[rule_name][1]
        rule_key = f"{key}.{rule_name}"
        rule_text = self.walk.string(rule_node, rule_key)
        if has_path:
            if not rule_text.startswith("/"):
                raise self.walk.fail(rule_node, rule_key, "a path glob starts with /")
            rule = PathRule.glob(rule_text)
            if rule_text.endswith("/*"):
                self.warn(
                    rule_node,
                    rule_key,
                    f"{rule_text!r} matches one segment only; a pasted Flask-CORS key "
                    f"covers every depth: write {rule_text}* (glob) or use regex:",
                )
        else:
            self.compile_regex(rule_node, rule_key, rule_text)  # refuse it with its location
            rule = PathRule.regex(rule_text)
        values = dict(defaults)
        values.update(
            self.policy_fields({k: v for k, v in fields.items() if k not in ("path", "regex")}, key)
        )
        origins = values.get("origins")
        if origins is None:
            raise self.walk.fail(node, f"{key}.origins", "missing (and not set in defaults)")
        self.origins_lines[index] = (origins.node or node).start_mark.line + 1
        credentials = bool(values["supports_credentials"])
        if origins.any_origin and credentials:
            where_node, where_key = values.get("_where_supports_credentials", (node, key))
            raise self.walk.fail(
                where_node,
                where_key,
                'origins "*" with supports_credentials: true is refused: browsers reject '
                "a wildcard with credentials, and reflecting any origin would let every "
                "site read your users' data; list the origins instead",
            )
        expose = values["expose_headers"]
        if expose is None and credentials:
            where_node, where_key = values.get("_where_expose_headers", (node, key))
            raise self.walk.fail(
                where_node,
                where_key,
                'expose_headers "*" is literal with credentials; list the header names',
            )
        max_age = values["max_age"]
        if max_age is not None and max_age > CHROMIUM_MAX_AGE_CAP:
            where_node, where_key = values.get("_where_max_age", (node, key))
            self.warn(
                where_node,
                where_key,
                f"{max_age} exceeds browsers' caps (Chromium {CHROMIUM_MAX_AGE_CAP} s, "
                f"Firefox {FIREFOX_MAX_AGE_CAP} s); preflights will be repeated sooner",
            )
        for regex_key, regex_node, pattern in origins.regex_nodes:
            if re.search(r"(?<!\\)\.(?![*+?])", pattern.replace("\\\\", "")):
                self.warn(
                    regex_node,
                    regex_key,
                    "unescaped '.' matches any character (pr-1XpreviewYexample.com); "
                    "write \\. for a literal dot",
                )
            if not pattern.startswith("^") or not pattern.endswith("$"):
                self.warn(
                    regex_node,
                    regex_key,
                    "regex origins are matched in full, but this one has no ^...$ anchors; "
                    "add them so the file says what cors-edge does",
                )
        allow_headers = values["allow_headers"]
        return RoutePolicy(
            index=index,
            line=node.start_mark.line + 1,
            rule=rule,
            origins=origins.compile(),
            origin_sources=tuple(origins.sources),
            methods=values["methods"],
            allow_headers=None
            if allow_headers is None
            else frozenset(h.lower() for h in allow_headers),
            allow_headers_listed=allow_headers or (),
            expose_headers=("*",) if expose is None else expose,
            supports_credentials=credentials,
            max_age=max_age,
            send_wildcard=bool(values["send_wildcard"]),
            allow_private_network=bool(values["allow_private_network"]),
            enforce=bool(values["enforce"]),
        )

    def lint(self, policies: list[RoutePolicy]) -> None:
        credentialed = [p for p in policies if p.supports_credentials]
        for policy in policies:
            if policy.origins.any_origin and credentialed:
                others = ", ".join(p.rule.source for p in credentialed)
                self.warnings.append(
                    f"{self.source}:{self.origins_lines[policy.index]} "
                    f"routes[{policy.index}].origins: warning: "
                    f'"*" lets every site read this route while {others} accept cookies; '
                    "make sure it serves nothing user-specific"
                )


def load_policy_text(text: str, source: str = "<string>") -> Config:
    """Parse and compile a policy document, or raise :class:`PolicyError`."""
    try:
        root = yaml.compose(text, Loader=_COMPOSER)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = error.problem or error.context or "invalid YAML"
        raise PolicyError(source, line, "(yaml)", f"invalid YAML: {problem}") from None
    except yaml.YAMLError as error:
        raise PolicyError(source, 1, "(yaml)", f"invalid YAML: {error}") from None
    reader = _PolicyReader(source)
    values = reader.read(root)
    return Config(
        source=source,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        upstream=values.get("upstream", "http://127.0.0.1:5000"),
        listen=values.get("listen", "0.0.0.0:8080"),
        admin=values.get("admin", "127.0.0.1:9901"),
        timeouts=values["timeouts"],
        limits=values["limits"],
        trust_forwarded_from=values["trust_forwarded_from"],
        routes=values["routes"],
        warnings=tuple(reader.warnings),
    )


def load_policy_file(path: str | Path) -> Config:
    """Read and compile a policy file; errors name the path as given."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise PolicyError(source, 0, "(file)", f"cannot read: {error.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise PolicyError(source, line, "(file)", "not valid UTF-8") from None
    return load_policy_text(text, source)
