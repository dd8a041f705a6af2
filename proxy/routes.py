"""Routes: the path Flask will route, path rules (glob or regex), and the route table.

The policy must be chosen on the same path the upstream routes, or a request could
pick a looser policy than the endpoint it reaches. WSGI servers percent-decode the
raw path exactly once and Werkzeug merges empty segments, so we do the same, and we
refuse outright the raw paths whose meaning differs between hops (dot segments,
encoded slashes and backslashes, NUL, a raw ``#``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import unquote

T = TypeVar("T")

_MULTI_SLASH = re.compile(r"/{2,}")
# Any of these anywhere in the raw path means it is ambiguous between hops. A raw "#"
# starts a fragment for the upstream hop and for gunicorn (which cut it off), never for
# the policy: "/api/items#.png" would be decided as a .png and run /api/items.
_FORBIDDEN_RAW = re.compile(r"%(?:2[fF]|5[cC]|00)|\\|\x00|#")
_DOT_SEGMENT = re.compile(r"(?:^|/)(?:\.|%2[eE]){1,2}(?:/|$)")
# "^/" + plain characters + a slash (maybe escaped) that no quantifier makes optional.
_REGEX_FIRST_SEGMENT = re.compile(r"\^/([A-Za-z0-9_~-]+)(?:/|\\/)(?![*?{])")


class BadPath(ValueError):
    """The raw request path is refused (400) before any policy lookup."""


def routing_path(raw_path: str) -> str:
    """The path Flask will route for a raw request path (no query), or raise :class:`BadPath`."""
    if not raw_path.startswith("/"):
        raise BadPath("the request target must be an absolute path")
    if (
        "%" not in raw_path
        and "\\" not in raw_path
        and "\x00" not in raw_path
        and "#" not in raw_path
    ):
        # The common case: nothing to decode; only dot segments and "//" to look for.
        if "." in raw_path and _DOT_SEGMENT.search(raw_path):
            raise BadPath("dot segment in the path")
        return _MULTI_SLASH.sub("/", raw_path) if "//" in raw_path else raw_path
    if _FORBIDDEN_RAW.search(raw_path):
        raise BadPath("encoded slash, backslash, NUL or fragment in the path")
    if _DOT_SEGMENT.search(raw_path):
        raise BadPath("dot segment in the path")
    decoded = unquote(raw_path, errors="replace") if "%" in raw_path else raw_path
    if "//" in decoded:
        decoded = _MULTI_SLASH.sub("/", decoded)
    return decoded


def glob_to_regex(glob: str) -> str:
    """Translate a path glob: ``*`` matches within one segment, ``**`` across segments.

    A trailing ``/**`` also matches the directory itself (``/api/**`` covers ``/api``).
    """
    out: list[str] = []
    i = 0
    while i < len(glob):
        if glob.startswith("/**", i) and i + 3 == len(glob):
            out.append(r"(?:/.*)?")
            i += 3
        elif glob.startswith("**/", i):
            out.append(r"(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(r".*")
            i += 2
        elif glob[i] == "*":
            out.append(r"[^/]*")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return "".join(out)


def literal_first_segment(pattern: str, *, is_regex: bool) -> str | None:
    """The literal first path segment every match must start with, if one is evident.

    Used to index routes so a lookup tests only the routes that can match, so it must
    never name a segment some match does not start with: ``None`` unless certain. A
    regex qualifies only when it opens with ``^/``, plain characters and a slash that
    is required (not followed by ``*``, ``?`` or ``{``): ``^/api/*`` also matches
    ``/apidocs``, the pasted form of a Flask-CORS key.
    """
    if is_regex:
        if "|" in pattern:
            return None
        match = _REGEX_FIRST_SEGMENT.match(pattern)
        return match[1] if match else None
    match = re.match(r"/([^/*]+)(/|$)", pattern)
    return match[1] if match else None


@dataclass(frozen=True, slots=True)
class PathRule:
    """A compiled ``path:`` glob or ``regex:`` rule."""

    source: str
    is_regex: bool
    pattern: re.Pattern[str]

    @classmethod
    def glob(cls, glob: str) -> PathRule:
        # DOTALL: a decoded path may hold any character (%0a is a newline), and
        # ``**`` must still cover it, or /api/x%0a would escape the /api/** policy.
        return cls(glob, False, re.compile(glob_to_regex(glob), re.DOTALL))

    @classmethod
    def regex(cls, regex: str) -> PathRule:
        # DOTALL: a decoded %0a must not let a path escape "^/api/.*" (globs behave alike).
        return cls(regex, True, re.compile(regex, re.DOTALL))

    def matches(self, path: str) -> bool:
        # Globs cover the whole path; regexes are matched from the start, as
        # Flask-CORS does with its resource keys.
        if self.is_regex:
            return self.pattern.match(path) is not None
        return self.pattern.fullmatch(path) is not None


class RouteTable(Generic[T]):
    """First match wins, in file order, without testing every rule on every lookup."""

    __slots__ = ("_by_segment", "_entries", "_unindexed")

    def __init__(self, entries: Sequence[tuple[PathRule, T]]) -> None:
        self._entries = tuple(entries)
        by_segment: dict[str, list[int]] = {}
        unindexed: list[int] = []
        for index, (rule, _) in enumerate(self._entries):
            segment = literal_first_segment(rule.source, is_regex=rule.is_regex)
            if segment is None:
                unindexed.append(index)
            else:
                by_segment.setdefault(segment, []).append(index)
        self._unindexed = tuple(unindexed)
        self._by_segment = {
            segment: tuple(sorted({*indices, *unindexed}))
            for segment, indices in by_segment.items()
        }

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def entries(self) -> tuple[tuple[PathRule, T], ...]:
        return self._entries

    def lookup(self, path: str) -> T | None:
        end = path.find("/", 1)
        segment = path[1:] if end == -1 else path[1:end]
        candidates = self._by_segment.get(segment, self._unindexed)
        entries = self._entries
        for index in candidates:
            rule, value = entries[index]
            if rule.matches(path):
                return value
        return None
