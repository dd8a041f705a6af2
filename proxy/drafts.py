"""The policy file as written: typed values, each with where in the file it came from.

The loader's parse step produces these from YAML nodes, its merge step lays a route
over ``defaults:`` and the built-in defaults, and validation (errors) and lint
(warnings) read them; only then is the immutable :class:`~proxy.policy.RoutePolicy`
built. Carrying a :class:`Where` with each value is what lets every message name
``file:line key``, also for a value inherited from ``defaults:``. No YAML here.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Generic, TypeVar

from .origins import OriginSet, SubdomainWildcard
from .routes import PathRule

T = TypeVar("T")


class PolicyError(ValueError):
    """A policy file is refused. ``str()`` is ``file:line key: message``."""

    def __init__(self, source: str, line: int, key: str, message: str) -> None:
        self.source = source
        self.line = line
        self.key = key
        self.message = message
        super().__init__(f"{source}:{line} {key}: {message}")


@dataclass(frozen=True, slots=True)
class Where:
    """A place in a policy file: the file, the 1-based line and the key path."""

    source: str
    line: int
    key: str

    def error(self, message: str) -> PolicyError:
        return PolicyError(self.source, self.line, self.key, message)

    def warning(self, message: str) -> str:
        return f"{self.source}:{self.line} {self.key}: warning: {message}"


@dataclass(frozen=True, slots=True)
class Located(Generic[T]):
    """A value and where it was written."""

    value: T
    where: Where


@dataclass(frozen=True, slots=True)
class OriginsDraft:
    """An ``origins`` value as parsed: the compiled parts and each entry as written."""

    any_origin: bool
    exact: tuple[str, ...] = ()
    wildcards: tuple[SubdomainWildcard, ...] = ()
    regexes: tuple[Located[re.Pattern[str]], ...] = ()
    entries: tuple[Located[str], ...] = ()  # as written; a regex entry as "regex:PATTERN"

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(entry.value for entry in self.entries)

    def compile(self) -> OriginSet:
        return OriginSet.build(
            any_origin=self.any_origin,
            exact=self.exact,
            wildcards=self.wildcards,
            regexes=(regex.value for regex in self.regexes),
        )


@dataclass(frozen=True, slots=True)
class PolicyFields:
    """The CORS keys of one route or of ``defaults:``; ``None`` where a key is left out.

    ``None`` inside a ``Located`` (methods, allow_headers, expose_headers) means ``"*"``;
    a ``max_age`` of ``None`` means the file said ``null`` (no ``Max-Age`` header).
    """

    origins: Located[OriginsDraft] | None = None
    methods: Located[tuple[str, ...] | None] | None = None
    allow_headers: Located[tuple[str, ...] | None] | None = None
    expose_headers: Located[tuple[str, ...] | None] | None = None
    supports_credentials: Located[bool] | None = None
    max_age: Located[int | None] | None = None
    send_wildcard: Located[bool] | None = None
    allow_private_network: Located[bool] | None = None
    enforce: Located[bool | str] | None = None  # True, False or "shadow"

    def over(self, base: PolicyFields) -> PolicyFields:
        """These fields where they are set, ``base``'s elsewhere (a route over defaults)."""
        mine = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        return dataclasses.replace(base, **{k: v for k, v in mine.items() if v is not None})


def builtin_fields(where: Where) -> PolicyFields:
    """DESIGN.md's built-in defaults, placed at ``where`` (the route that inherits them),
    so a message about an inherited built-in value points at that route."""
    return PolicyFields(
        methods=Located(("GET", "HEAD", "POST"), where),
        allow_headers=Located(("Content-Type",), where),
        expose_headers=Located((), where),
        supports_credentials=Located(False, where),
        max_age=Located(600, where),
        send_wildcard=Located(True, where),
        allow_private_network=Located(False, where),
        enforce=Located(True, where),
    )


@dataclass(frozen=True, slots=True)
class RouteDraft:
    """One route after the merge step: its rule and every field resolved and located.

    ``fields.origins`` may still be ``None`` (validation refuses that); every other
    field is set, from the route, from ``defaults:`` or from the built-in defaults.
    """

    index: int
    where: Where  # the route's own mapping
    rule: Located[PathRule]
    fields: PolicyFields
