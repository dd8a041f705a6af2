"""The parse step for CORS keys: the YAML nodes of a route or ``defaults:`` to
:class:`~proxy.drafts.PolicyFields`, each value with where it was written."""

from __future__ import annotations

import re
from typing import Any

import yaml

from .drafts import Located, OriginsDraft, PolicyFields
from .origins import OriginError, SubdomainWildcard, normalise_configured_origin
from .policy import TOKEN_RE
from .yamlwalk import Fields, Walker, construct, describe, is_null, join

POLICY_KEYS = frozenset(
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
_BOOLEAN_KEYS = ("supports_credentials", "send_wildcard", "allow_private_network", "enforce")


class FieldReader:
    def __init__(self, walk: Walker) -> None:
        self.walk = walk

    def fields(self, fields: Fields, key: str) -> PolicyFields:
        """The CORS keys among ``fields`` (other keys are the caller's)."""
        values: dict[str, Located[Any]] = {}
        for name, (_, node) in fields.items():
            if name not in POLICY_KEYS:
                continue
            child = join(key, name)
            where = self.walk.where(node, child)
            if name == "origins":
                values[name] = Located(self.origins(node, child), where)
            elif name == "methods":
                values[name] = Located(self.tokens(node, child, what="methods", upper=True), where)
            elif name in ("allow_headers", "expose_headers"):
                tokens = self.tokens(node, child, what="header names", upper=False)
                values[name] = Located(tokens, where)
            elif name == "max_age":
                seconds = (
                    None if is_null(node) else int(self.walk.number(node, child, integer=True))
                )
                values[name] = Located(seconds, where)
            elif name == "vary_header":
                if not self.walk.boolean(node, child):
                    raise where.error(
                        "cors-edge always sends Vary where the answer varies, so shared "
                        "caches never serve one origin's answer to another; remove this key"
                    )
            elif name == "enforce":
                enforce = self.walk.scalar(node, child)
                if not isinstance(enforce, bool) and enforce != "shadow":  # see proxy/shadow.py
                    raise where.error(f"expected true, false or shadow, got {describe(node)}")
                values[name] = Located(enforce, where)
            else:
                assert name in _BOOLEAN_KEYS
                values[name] = Located(self.walk.boolean(node, child), where)
        return PolicyFields(**values)

    def origins(self, node: yaml.Node, key: str) -> OriginsDraft:
        """``"*"``, one origin, or a list of them; ``[]`` (least privilege) allows none."""
        if isinstance(node, yaml.ScalarNode) and construct(node) == "*":
            return OriginsDraft(True, entries=(Located("*", self.walk.where(node, key)),))
        scalar = isinstance(node, yaml.ScalarNode)
        items = [node] if scalar else self.walk.sequence(node, key)
        exact: list[str] = []
        wildcards: list[SubdomainWildcard] = []
        regexes: list[Located[re.Pattern[str]]] = []
        entries: list[Located[str]] = []
        for position, item in enumerate(items):
            item_key = key if scalar else f"{key}[{position}]"
            if isinstance(item, yaml.MappingNode):
                regex = self.origin_regex(item, item_key)
                regexes.append(regex)
                entries.append(Located(f"regex:{regex.value.pattern}", regex.where))
                continue
            text = self.walk.string(item, item_key)
            if text == "*":
                raise self.walk.fail(item, item_key, '"*" must be the whole value: origins: "*"')
            try:
                if "*" in text:
                    wildcards.append(SubdomainWildcard.parse(text))
                else:
                    exact.append(normalise_configured_origin(text))
            except OriginError as error:
                raise self.walk.fail(item, item_key, str(error)) from None
            entries.append(Located(text, self.walk.where(item, item_key)))
        return OriginsDraft(False, tuple(exact), tuple(wildcards), tuple(regexes), tuple(entries))

    def origin_regex(self, node: yaml.Node, key: str) -> Located[re.Pattern[str]]:
        fields = self.walk.mapping(node, key, frozenset({"regex"}))
        if "regex" not in fields:
            raise self.walk.fail(node, key, "expected {regex: PATTERN}")
        regex_node = fields["regex"][1]
        regex_key = f"{key}.regex"
        pattern = self.walk.string(regex_node, regex_key)
        return Located(
            self.regex(regex_node, regex_key, pattern), self.walk.where(regex_node, regex_key)
        )

    def regex(self, node: yaml.Node, key: str, pattern: str) -> re.Pattern[str]:
        try:
            return re.compile(pattern)
        except re.error as error:
            raise self.walk.fail(node, key, f"invalid regular expression: {error}") from None

    def tokens(
        self, node: yaml.Node, key: str, *, what: str, upper: bool
    ) -> tuple[str, ...] | None:
        """A list of HTTP tokens (methods or header names), or ``None`` for ``"*"``."""
        if isinstance(node, yaml.ScalarNode):
            value = construct(node)
            if value == "*":
                return None
            if not isinstance(value, str):
                raise self.walk.fail(node, key, f"expected a list of {what}, got {describe(node)}")
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
            token = text.upper() if upper else text
            if token.lower() not in seen:
                seen.add(token.lower())
                result.append(token)
        return tuple(result)
