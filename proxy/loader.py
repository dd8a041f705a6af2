"""The policy loader: YAML text in, an immutable, pre-compiled :class:`Config` out.

Loading is all-or-nothing. Every error names the file, the line and the key path
(``config/policies.yaml:14 routes[0].origins[2]: ...``). A route goes through four
steps: parse (nodes to located values, :mod:`proxy.policyfields`), merge (over
``defaults:`` and the built-in defaults), validate (combinations that are refused),
and lint (:mod:`proxy.lint`, warnings only); then its :class:`RoutePolicy` is built.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .drafts import Located, PolicyError, PolicyFields, RouteDraft, Where, builtin_fields
from .lint import lint, lint_scheme
from .policy import Config, Limits, RoutePolicy, Scheme, Timeouts, Unmatched
from .policyfields import POLICY_KEYS, FieldReader
from .policyread import FixedPolicy, read_policy_bytes
from .routes import PathRule, RouteTable
from .yamlwalk import Fields, UnreadableScalar, Walker, compose, is_null

__all__ = [
    "PolicyError",
    "load_policy_bytes",
    "load_policy_file",
    "load_policy_text",
    "local_dev_policy",
]

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)
D = TypeVar("D")

_TOP_KEYS = frozenset(
    {"upstream", "listen", "admin", "timeouts", "limits", "trust_forwarded_from", "defaults"}
    | {"routes", "unmatched", "public_scheme"}
)
_TIMEOUT_KEYS = frozenset(
    {"connect", "read", "client_header", "client_body", "keepalive", "upstream_idle"}
    | {"client_send", "client_body_min_rate", "pool_wait", "websocket_idle"}  # issue 10
)
_LIMIT_KEYS = frozenset(
    {"max_body_bytes", "max_header_bytes", "max_headers", "max_upstream_connections"}
    | {"max_upstream_header_line", "max_upstream_header_bytes"}
    | {"max_websocket_message", "max_websockets"}
)
_POLICY_KEYS = POLICY_KEYS
_ROUTE_KEYS = _POLICY_KEYS | {"path", "regex"}

_ADDRESS_RE = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]*):(?P<port>[0-9]{1,5})")
_UPSTREAM_RE = re.compile(r"(?:https?://[^\s/?#]+/?|unix:/\S+)")


class _PolicyReader:
    def __init__(self, source: str) -> None:
        self.walk = Walker(source)
        self.fields = FieldReader(self.walk)
        self.source = source

    def read(self, root: yaml.Node | None) -> dict[str, Any]:
        if root is None:
            raise PolicyError(self.source, 1, "(document)", "the policy file is empty")
        top = self.walk.mapping(root, "", _TOP_KEYS)
        result: dict[str, Any] = {}
        for name in ("upstream", "listen", "admin"):
            if name in top:
                result[name] = self.address(top[name][1], name)
        result["timeouts"] = self.section(top, "timeouts", _TIMEOUT_KEYS, Timeouts, integer=False)
        result["limits"] = self.section(top, "limits", _LIMIT_KEYS, Limits, integer=True)
        result["trust_forwarded_from"] = self.networks(top)
        result["unmatched"] = self.choice(top, "unmatched", Unmatched, Unmatched.FORWARD)
        result["public_scheme"] = self.choice(top, "public_scheme", Scheme, None)
        defaults = PolicyFields()
        if "defaults" in top:
            node = top["defaults"][1]
            defaults = self.fields.fields(
                self.walk.mapping(node, "defaults", _POLICY_KEYS), "defaults"
            )
        if "routes" not in top:
            raise self.walk.fail(root, "routes", "missing; list at least one route")
        route_nodes = self.walk.sequence(top["routes"][1], "routes")
        drafts = [self.route(node, i, defaults) for i, node in enumerate(route_nodes)]
        scheme_warnings = lint_scheme(
            result["public_scheme"], bool(result["trust_forwarded_from"]), self.walk.where(root, "")
        )
        result["warnings"] = (*lint(drafts), *scheme_warnings)
        result["routes"] = RouteTable([(d.rule.value, build_route(d)) for d in drafts])
        return result

    def address(self, node: yaml.Node, name: str) -> str:
        text = self.walk.string(node, name)
        pattern = _UPSTREAM_RE if name == "upstream" else _ADDRESS_RE
        if not pattern.fullmatch(text) or (
            name != "upstream" and int(text.rsplit(":", 1)[1]) > 65535
        ):
            expected = "http://host:port or unix:/path.sock" if name == "upstream" else "host:port"
            raise self.walk.fail(node, name, f"{text!r} is not of the form {expected}")
        return text

    def choice(self, top: Fields, name: str, enum: type[E], default: D) -> E | D:
        if name not in top:
            return default
        node = top[name][1]
        text = self.walk.string(node, name)
        try:
            return enum(text)
        except ValueError:
            expected = " or ".join(member.value for member in enum)
            raise self.walk.fail(node, name, f"{text!r}: expected {expected}") from None

    def section(
        self, top: Fields, name: str, keys: frozenset[str], cls: Callable[..., T], *, integer: bool
    ) -> T:
        if name not in top:
            return cls()
        fields = self.walk.mapping(top[name][1], name, keys)
        values: dict[str, Any] = {}
        for key, (_, node) in fields.items():
            child = f"{name}.{key}"
            if key == "max_body_bytes" and is_null(node):
                values[key] = None
                continue
            number = self.walk.number(node, child, integer=integer)
            if number <= 0 and key not in ("max_body_bytes",):
                raise self.walk.fail(node, child, "must be greater than zero")
            values[key] = int(number) if integer else number
        return cls(**values)

    def networks(self, top: Fields) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
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

    # --- one route: parse, merge, validate (lint runs on all drafts) ----------

    def route(self, node: yaml.Node, index: int, defaults: PolicyFields) -> RouteDraft:
        key = f"routes[{index}]"
        fields = self.walk.mapping(node, key, _ROUTE_KEYS)
        where = self.walk.where(node, key)
        rule = self.rule(node, key, fields)
        merged = self.fields.fields(fields, key).over(defaults).over(builtin_fields(where))
        draft = RouteDraft(index, where, rule, merged)
        validate(draft)
        return draft

    def rule(self, node: yaml.Node, key: str, fields: Fields) -> Located[PathRule]:
        has_path, has_regex = "path" in fields, "regex" in fields
        if has_path == has_regex:
            raise self.walk.fail(node, key, "a route needs exactly one of path: or regex:")
        name = "path" if has_path else "regex"
        rule_node = fields[name][1]
        rule_key = f"{key}.{name}"
        text = self.walk.string(rule_node, rule_key)
        where = self.walk.where(rule_node, rule_key)
        if has_path:
            if not text.startswith("/"):
                raise where.error("a path glob starts with /")
            return Located(PathRule.glob(text), where)
        self.fields.regex(rule_node, rule_key, text)  # refuse it with its location
        return Located(PathRule.regex(text), where)


def validate(route: RouteDraft) -> None:
    """Refuse the combinations DESIGN.md refuses, at the key that made them so."""
    fields = route.fields
    if fields.origins is None:
        where = route.where
        raise Where(where.source, where.line, f"{where.key}.origins").error(
            "missing (and not set in defaults)"
        )
    credentials = _value(fields.supports_credentials)
    if fields.origins.value.any_origin and credentials:
        assert fields.supports_credentials is not None
        raise fields.supports_credentials.where.error(
            'origins "*" with supports_credentials: true is refused: browsers reject '
            "a wildcard with credentials, and reflecting any origin would let every "
            "site read your users' data; list the origins instead"
        )
    if credentials and fields.expose_headers is not None and fields.expose_headers.value is None:
        raise fields.expose_headers.where.error(
            'expose_headers "*" is literal with credentials; list the header names'
        )


def build_route(route: RouteDraft) -> RoutePolicy:
    """The immutable, precomputed policy of a validated draft."""
    fields = route.fields
    assert fields.origins is not None  # validate() refused it otherwise
    origins = fields.origins.value
    allow_headers = _value(fields.allow_headers)
    expose = _value(fields.expose_headers)
    return RoutePolicy(
        index=route.index,
        line=route.where.line,
        rule=route.rule.value,
        origins=origins.compile(),
        origin_sources=origins.sources,
        methods=_value(fields.methods),
        allow_headers=None
        if allow_headers is None
        else frozenset(h.lower() for h in allow_headers),
        allow_headers_listed=allow_headers or (),
        expose_headers=("*",) if expose is None else expose,
        supports_credentials=bool(_value(fields.supports_credentials)),
        max_age=_value(fields.max_age),
        send_wildcard=bool(_value(fields.send_wildcard)),
        allow_private_network=bool(_value(fields.allow_private_network)),
        enforce=bool(_value(fields.enforce)),  # "shadow" decides as enforced
        shadow=_value(fields.enforce) == "shadow",
    )


def _value(field: Located[T] | None) -> T:
    assert field is not None, "merged over the built-in defaults"
    return field.value


def load_policy_text(text: str, source: str = "<string>") -> Config:
    """Parse and compile a policy document, or raise :class:`PolicyError`."""
    root = compose(text, source)
    try:
        values = _PolicyReader(source).read(root)
    except UnreadableScalar as error:
        line = error.node.start_mark.line + 1
        raise PolicyError(source, line, "(yaml)", f"invalid YAML: {error}") from None
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
        warnings=values["warnings"],
        unmatched=values["unmatched"],
        public_scheme=values["public_scheme"],
    )


def load_policy_file(path: str | Path) -> Config:
    """Read and compile a policy file (a regular file, at most MAX_POLICY_BYTES);
    errors name the path as given."""
    return load_policy_bytes(read_policy_bytes(Path(path)), str(path))


def load_policy_bytes(raw: bytes, source: str) -> Config:
    """Compile a policy file's bytes (UTF-8), as read once by the caller."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise PolicyError(source, line, "(file)", "not valid UTF-8") from None
    return load_policy_text(text, source)


def local_dev_policy(origins: Sequence[str], *, credentials: bool) -> FixedPolicy:
    """The policy ``serve --allow-origin O ... [--allow-credentials]`` stands for
    (DESIGN.md "Local development in one line"): one route ``/**`` allowing the listed
    origins, every method and every requested header (answered as lists, as ``"*"``
    is in a file), credentials when asked; on loopback, plain http. It is written as
    a policy document and validated like any file, so the rules are the same;
    PolicyError if an origin is not one (or ``"*"`` is asked with credentials)."""
    listed: str | list[str] = "*" if list(origins) == ["*"] else list(origins)
    route = {"path": "/**", "origins": listed, "methods": "*", "allow_headers": "*"}
    document = {
        "listen": "127.0.0.1:8080",
        "public_scheme": "http",
        "routes": [{**route, "supports_credentials": credentials}],
    }
    text = yaml.safe_dump(document, sort_keys=False)
    source = (
        f"--allow-origin {' '.join(origins)} (no policy file: one route /** for every "
        f"method and requested header, {'with' if credentials else 'without'} credentials)"
    )
    load_policy_text(text, source)  # refuse now, at start, with the loader's own words
    return FixedPolicy(text, source)
