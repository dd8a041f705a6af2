"""Typed access to composed YAML nodes, with the file, line and key of each one.

PyYAML's node marks give the lines, so a policy document is composed to nodes (not
loaded to plain values) and read node by node through :class:`Walker`, which raises
:class:`~proxy.drafts.PolicyError` naming ``file:line key`` for anything unexpected.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import yaml

from .drafts import PolicyError, Where

# libyaml's parser when PyYAML was built with it (ten times faster on big files);
# both give the node marks every error message needs.
COMPOSER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_CONSTRUCTOR_LOCK = threading.Lock()

Fields = dict[str, tuple[yaml.Node, yaml.Node]]  # key -> (key node, value node)


def compose(text: str, source: str) -> yaml.Node | None:
    """The document's root node, or raise :class:`PolicyError` for invalid YAML."""
    try:
        node: yaml.Node | None = yaml.compose(text, Loader=COMPOSER)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = error.problem or error.context or "invalid YAML"
        raise PolicyError(source, line, "(yaml)", f"invalid YAML: {problem}") from None
    except yaml.YAMLError as error:
        raise PolicyError(source, 1, "(yaml)", f"invalid YAML: {error}") from None
    return node


class Walker:
    """Reads nodes as typed values; every failure names file:line:key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def where(self, node: yaml.Node, key: str) -> Where:
        return Where(self.source, node.start_mark.line + 1, key or "(document)")

    def fail(self, node: yaml.Node, key: str, message: str) -> PolicyError:
        return self.where(node, key).error(message)

    def mapping(self, node: yaml.Node, key: str, allowed: frozenset[str]) -> Fields:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, key, f"expected a mapping, got {describe(node)}")
        result: Fields = {}
        for key_node, value_node in node.value:
            name = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            child = join(key, str(name))
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
            raise self.fail(node, key, f"expected a list, got {describe(node)}")
        return list(node.value)

    def scalar(self, node: yaml.Node, key: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, key, f"expected a single value, got {describe(node)}")
        return construct(node)

    def string(self, node: yaml.Node, key: str) -> str:
        value = self.scalar(node, key)
        if not isinstance(value, str) or not value:
            raise self.fail(node, key, f"expected a non-empty string, got {describe(node)}")
        return value

    def boolean(self, node: yaml.Node, key: str) -> bool:
        value = self.scalar(node, key)
        if not isinstance(value, bool):
            raise self.fail(node, key, f"expected true or false, got {describe(node)}")
        return value

    def number(self, node: yaml.Node, key: str, *, integer: bool = False) -> float:
        value = self.scalar(node, key)
        valid = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not valid or value != value:
            kind = "a whole number" if integer else "a number"
            raise self.fail(node, key, f"expected {kind}, got {describe(node)}")
        if value < 0:
            raise self.fail(node, key, "must not be negative")
        return float(value)


def is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and construct(node) is None


class UnreadableScalar(Exception):
    """A scalar whose tag PyYAML cannot build (``!!foo x``, ``!!int abc``)."""

    def __init__(self, node: yaml.Node, problem: str) -> None:
        super().__init__(problem)
        self.node = node


def construct(node: yaml.Node) -> Any:
    """The Python value of a scalar node, resolved by its tag as yaml.safe_load would."""
    constructor = _CONSTRUCTOR
    with _CONSTRUCTOR_LOCK:  # reloads compile on a worker thread
        try:
            return constructor.construct_object(node, deep=True)
        except Exception as error:  # an explicit tag fails in many ways (Key/Value/YAMLError)
            problem = getattr(error, "problem", None) or f"cannot read {node.tag}"
            raise UnreadableScalar(node, str(problem)) from None
        finally:
            constructor.constructed_objects.clear()
            constructor.recursive_objects.clear()


def join(parent: str, child: str) -> str:
    # A key from the file is shown as one token (JSON-quoted when it holds whitespace
    # or controls), so an error always reads ``file:line key: message``.
    if not child or any(ch.isspace() or not ch.isprintable() for ch in child):
        child = json.dumps(child).replace(" ", "\\u0020")
    return f"{parent}.{child}" if parent else child


def describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag.endswith(":null"):
        return "nothing (null)"
    return repr(node.value)
