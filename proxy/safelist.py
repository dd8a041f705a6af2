"""What a page's fetch() sends: CORS-safelisted methods and request-headers, the preflight.

Pure (no aiohttp, no yaml, no I/O), the request half of the browser's side of CORS;
proxy/browser.py judges the answers and re-exports everything here. The rules are
the Fetch standard's (https://fetch.spec.whatwg.org/), quoted beside the code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

Headers = Sequence[tuple[str, str]]

# "A CORS-safelisted method is a method that is `GET`, `HEAD`, or `POST`."
SAFELISTED_METHODS = frozenset({"GET", "HEAD", "POST"})
# "To normalize a method, if it is a byte-case-insensitive match for `DELETE`, `GET`,
# `HEAD`, `OPTIONS`, `POST`, or `PUT`, byte-uppercase it." (fetch() does this first)
_NORMALIZED_METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"})
# "A forbidden method is a method that is a byte-case-insensitive match for
# `CONNECT`, `TRACE`, or `TRACK`." (fetch() throws a TypeError)
FORBIDDEN_METHODS = frozenset({"CONNECT", "TRACE", "TRACK"})
# "A CORS non-wildcard request-header name is a header name that is a
# byte-case-insensitive match for `Authorization`."
NON_WILDCARD_HEADERS = frozenset({"authorization"})
SAFELISTED_CONTENT_TYPES = frozenset(
    {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
)
# Forbidden request-headers: a page's Headers object silently drops them.
_FORBIDDEN_HEADERS = frozenset(
    {
        "accept-charset", "accept-encoding", "access-control-request-headers",
        "access-control-request-method", "connection", "content-length", "cookie",
        "cookie2", "date", "dnt", "expect", "host", "keep-alive", "origin", "referer",
        "set-cookie", "te", "trailer", "transfer-encoding", "upgrade", "via",
    }
)  # fmt: skip
_METHOD_OVERRIDE_HEADERS = frozenset(
    {"x-http-method", "x-http-method-override", "x-method-override"}
)
# "A CORS-unsafe request-header byte is a byte byte for which one of the following
# is true: byte is less than 0x20 and is not 0x09 HT; byte is 0x22 ("), 0x28 (left
# parenthesis), 0x29 (right parenthesis), 0x3A (:), 0x3C (<), 0x3E (>), 0x3F (?), 0x40
# (@), 0x5B ([), 0x5C (\), 0x5D (]), 0x7B ({), 0x7D (}), or 0x7F DEL."
_UNSAFE_BYTES = frozenset({chr(c) for c in range(0x20) if c != 0x09} | set('"():<>?@[\\]{}\x7f'))
# accept-language / content-language: "0x30 to 0x39, 0x41 to 0x5A, 0x61 to 0x7A, and
# is not 0x20, 0x2A, 0x2C, 0x2D, 0x2E, 0x3B, or 0x3D"
_LANGUAGE_RE = re.compile(r"[0-9A-Za-z *,\-.;=]*")
_RANGE_RE = re.compile(r"bytes=([0-9]+)-([0-9]*)")
HTTP_WHITESPACE = " \t\r\n"


def normalize_method(method: str) -> str:
    """The method fetch() sends for ``method`` (only the six standard ones are upper-cased)."""
    upper = method.upper()
    return upper if upper in _NORMALIZED_METHODS else method


def page_headers(headers: Headers) -> list[tuple[str, str]]:
    """The header list fetch() builds from a page's ``headers``: forbidden names dropped,
    values trimmed ("normalize": strip leading and trailing HTTP whitespace), and a
    repeated name combined with ", " as Headers.append() does."""
    combined: dict[str, tuple[str, str]] = {}
    for name, raw in headers:
        lower = name.lower()
        value = raw.strip(HTTP_WHITESPACE)
        if _is_forbidden_header(lower, value):
            continue
        if lower in combined:
            first, previous = combined[lower]
            combined[lower] = (first, f"{previous}, {value}")
        else:
            combined[lower] = (name, value)
    return list(combined.values())


def _is_forbidden_header(lower: str, value: str) -> bool:
    if lower in _FORBIDDEN_HEADERS or lower.startswith(("proxy-", "sec-")):
        return True
    if lower in _METHOD_OVERRIDE_HEADERS:
        return any(v.strip().upper() in FORBIDDEN_METHODS for v in value.split(","))
    return False


def is_safelisted_header(name: str, value: str) -> bool:
    """Fetch, "CORS-safelisted request-header"."""
    # "1. If value's length is greater than 128, then return false."
    if len(value) > 128:
        return False
    lower = name.lower()
    if lower == "accept":
        # "If value contains a CORS-unsafe request-header byte, then return false."
        return not _UNSAFE_BYTES.intersection(value)
    if lower in ("accept-language", "content-language"):
        return _LANGUAGE_RE.fullmatch(value) is not None
    if lower == "content-type":
        # "If mimeType's essence is not "application/x-www-form-urlencoded",
        # "multipart/form-data", or "text/plain", then return false."
        if _UNSAFE_BYTES.intersection(value):
            return False
        essence = value.split(";", 1)[0].strip(HTTP_WHITESPACE).lower()
        return essence in SAFELISTED_CONTENT_TYPES
    if lower == "range":
        # "If rangeValue[0] is null, then return false." (no suffix ranges)
        match = _RANGE_RE.fullmatch(value)
        return match is not None and (not match[2] or int(match[1]) <= int(match[2]))
    return False


def unsafe_header_names(headers: Headers) -> list[str]:
    """Fetch, "CORS-unsafe request-header names": sorted, lower-case, deduplicated."""
    unsafe: set[str] = set()
    potentially_unsafe: set[str] = set()
    safelist_value_size = 0
    for name, value in headers:
        if is_safelisted_header(name, value):
            potentially_unsafe.add(name.lower())
            safelist_value_size += len(value)
        else:
            unsafe.add(name.lower())
    # "5. If safelistValueSize is greater than 1024, then for each name of
    # potentiallyUnsafeNames, append name to unsafeNames."
    if safelist_value_size > 1024:
        unsafe |= potentially_unsafe
    return sorted(unsafe)


def needs_preflight(method: str, headers: Headers) -> bool:
    """Whether fetch(url, {method, headers}) from another origin sends a preflight first.

    Fetch, main fetch: "request's method is not a CORS-safelisted method or CORS-unsafe
    request-header names with request's header list is not empty".
    """
    if normalize_method(method) not in SAFELISTED_METHODS:
        return True
    return bool(unsafe_header_names(page_headers(headers)))


def preflight_request(origin: str, method: str, headers: Headers) -> list[tuple[str, str]]:
    """The headers of the browser's OPTIONS (Fetch, "CORS-preflight fetch", steps 2-5)."""
    out = [("Accept", "*/*"), ("Access-Control-Request-Method", normalize_method(method))]
    names = unsafe_header_names(page_headers(headers))
    if names:
        # "5.1. Let value be the items in headers separated from each other by `,`."
        # (no space: "0x20 after 0x2C is not the way this was implemented")
        out.append(("Access-Control-Request-Headers", ",".join(names)))
    out.append(("Origin", origin))
    return out
