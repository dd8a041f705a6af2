"""Origins: strict parsing of the ``Origin`` request header, and compiled matchers.

Browsers send a serialised origin (``scheme://host[:port]`` with a lower-case,
ASCII/punycode host, or ``null``). Anything else is not a browser's origin and is
never allowed and never echoed: callers get ``None`` from :func:`parse_origin`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

# scheme "://" host [":" port]; host is a DNS name / IPv4 (letters, digits, "-", "_", ".")
# or a bracketed IPv6 literal. No userinfo, path, query, fragment, whitespace or controls.
_ORIGIN_RE = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://"
    r"(?P<host>[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_.])?|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?"
)
_MAX_ORIGIN_LENGTH = 2048


class OriginError(ValueError):
    """A configured origin pattern is not a valid origin."""


_parsed: dict[str, str | None] = {}
_PARSED_MAX = 4096  # distinct Origin values remembered; hostile floods just reset it


def parse_origin(value: str) -> str | None:
    """Return the normalised origin for a request's ``Origin`` value, or ``None``.

    Normalisation lower-cases scheme and host and drops the scheme's default port.
    ``"null"`` is returned as ``"null"``; it only ever matches a literal ``"null"``.
    Results are memoised: a site sees few distinct origins, and this runs per request.
    """
    try:
        return _parsed[value]
    except KeyError:
        pass
    result = _parse_origin(value)
    if len(_parsed) >= _PARSED_MAX:
        _parsed.clear()
    _parsed[value] = result
    return result


def _parse_origin(value: str) -> str | None:
    if value == "null":
        return "null"
    if len(value) > _MAX_ORIGIN_LENGTH:
        return None
    match = _ORIGIN_RE.fullmatch(value)
    if match is None:
        return None
    scheme = match["scheme"].lower()
    host = match["host"].lower()
    if ".." in host:
        return None
    port_text = match["port"]
    if port_text is None:
        return f"{scheme}://{host}"
    if len(port_text) > 1 and port_text[0] == "0":
        return None  # browsers never serialise leading zeros; refuse rather than guess
    port = int(port_text)
    if port > 65535:
        return None
    if DEFAULT_PORTS.get(scheme) == port:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def split_origin(origin: str) -> tuple[str, str, int | None]:
    """Split a normalised origin into scheme, host and explicit port (``None`` if default)."""
    scheme, _, authority = origin.partition("://")
    if authority.startswith("["):
        end = authority.index("]") + 1
        host, port_text = authority[:end], authority[end + 1 :]
    else:
        host, _, port_text = authority.partition(":")
    return scheme, host, int(port_text) if port_text else None


def normalise_configured_origin(text: str) -> str:
    """Normalise an exact origin from the policy file, or raise :class:`OriginError`."""
    if text.strip() != text:
        raise OriginError("origin has surrounding whitespace")
    normalised = parse_origin(text)
    if normalised is None:
        raise OriginError(
            f"{text!r} is not an origin; write scheme://host[:port] with no path, "
            'or "null", or a {regex: ...} entry'
        )
    return normalised


@dataclass(frozen=True, slots=True)
class SubdomainWildcard:
    """``scheme://*.suffix[:port]``: any subdomain at any depth, never the apex."""

    scheme: str
    suffix: str  # e.g. "example.com", without the leading dot
    port: int | None

    @classmethod
    def parse(cls, text: str) -> SubdomainWildcard:
        scheme, sep, rest = text.partition("://*.")
        if not sep or not scheme or "*" in rest:
            raise OriginError(f"{text!r}: a wildcard origin is written scheme://*.domain[:port]")
        normalised = parse_origin(f"{scheme}://{rest}")
        if normalised is None or normalised == "null":
            raise OriginError(f"{text!r} is not a valid wildcard origin")
        scheme_n, host, port = split_origin(normalised)
        if host.startswith("["):
            raise OriginError(f"{text!r}: the wildcard must stand for subdomains of a DNS name")
        return cls(scheme_n, host, port)


@dataclass(frozen=True, slots=True)
class OriginSet:
    """A compiled ``origins`` entry list. ``any_origin`` stands for ``"*"``."""

    any_origin: bool
    exact: frozenset[str]
    # (scheme, port) -> suffixes; a host matches when one of its proper suffixes is listed
    wildcards: dict[tuple[str, int | None], frozenset[str]]
    regexes: tuple[re.Pattern[str], ...]

    @classmethod
    def build(
        cls,
        *,
        any_origin: bool = False,
        exact: Iterable[str] = (),
        wildcards: Iterable[SubdomainWildcard] = (),
        regexes: Iterable[re.Pattern[str]] = (),
    ) -> OriginSet:
        by_key: dict[tuple[str, int | None], set[str]] = {}
        for wildcard in wildcards:
            by_key.setdefault((wildcard.scheme, wildcard.port), set()).add(wildcard.suffix)
        return cls(
            any_origin=any_origin,
            exact=frozenset(exact),
            wildcards={key: frozenset(values) for key, values in by_key.items()},
            regexes=tuple(regexes),
        )

    def allows(self, origin: str) -> bool:
        """Whether a normalised origin (from :func:`parse_origin`) is allowed."""
        if self.any_origin or origin in self.exact:
            return True
        if self.wildcards and origin != "null":
            scheme, host, port = split_origin(origin)
            suffixes = self.wildcards.get((scheme, port))
            if suffixes and not host.startswith("["):
                dot = host.find(".")
                while dot != -1:
                    if host[dot + 1 :] in suffixes:
                        return True
                    dot = host.find(".", dot + 1)
        if origin == "null":
            return False  # "null" matches only when listed literally, never by a regex
        return any(regex.fullmatch(origin) for regex in self.regexes)
