"""The browser's side of CORS: what a page's fetch() sends, and what it lets the page read.

Pure (no aiohttp, no yaml, no I/O). The rules are the Fetch standard's
(https://fetch.spec.whatwg.org/), quoted beside the code that applies them, as
h11 quotes RFC 9110. Where current Chromium decides differently the verdict is
Chromium's, because that is the browser a user debugs with, and the difference is
named in ``Check.chromium_differs``. Each difference is proven against a real
Chromium in tests/browser/test_probe_vs_chromium.py.

``explain``, ``test``, ``probe`` and shadow mode all judge with this module; the
request half (safelisting, what the preflight carries) is proxy/safelist.py, re-exported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .safelist import (
    FORBIDDEN_METHODS,
    HTTP_WHITESPACE,
    NON_WILDCARD_HEADERS,
    SAFELISTED_CONTENT_TYPES,
    SAFELISTED_METHODS,
    Headers,
    is_safelisted_header,
    needs_preflight,
    normalize_method,
    page_headers,
    preflight_request,
    unsafe_header_names,
)

__all__ = [
    "CHROMIUM_WILDCARD_COVERS_AUTHORIZATION",
    "FORBIDDEN_METHODS",
    "NON_WILDCARD_HEADERS",
    "SAFELISTED_CONTENT_TYPES",
    "SAFELISTED_METHODS",
    "Check",
    "Headers",
    "check_preflight",
    "check_response",
    "is_safelisted_header",
    "needs_preflight",
    "normalize_method",
    "page_headers",
    "preflight_request",
    "unsafe_header_names",
]

_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


# Where Chromium parts from the standard (checked against a real Chromium, 156 at the
# time of writing, by tests/browser/test_probe_vs_chromium.py): `*` in
# Access-Control-Allow-Headers covers Authorization on a request without credentials
# (the standard: never). Chromium compares methods byte for byte, as the standard does
# (fetch(u, {method: "patch"}) needs `patch`, not `PATCH`).
CHROMIUM_WILDCARD_COVERS_AUTHORIZATION = True


@dataclass(frozen=True, slots=True)
class Check:
    """One browser check: the verdict, the rules applied, and why it failed."""

    ok: bool
    steps: tuple[str, ...]  # one human line per rule applied, in order
    reason: str  # the failing rule in Chromium-console-like words, or ""
    chromium_differs: str | None = None  # set when the standard would decide otherwise


def _get(headers: Headers, name: str) -> str | None:
    """Fetch, "get a header": every value of ``name`` combined with ", ", or None."""
    lower = name.lower()
    values = [value.strip(HTTP_WHITESPACE) for key, value in headers if key.lower() == lower]
    return ", ".join(values) if values else None


def _extract_list(headers: Headers, name: str) -> list[str] | bool | None:
    """Fetch, "extract header list values" for a ``#token`` header: None when absent,
    False when a value does not parse, else the items (empty items allowed by ``#``)."""
    value = _get(headers, name)
    if value is None:
        return None
    items = [item.strip(HTTP_WHITESPACE) for item in value.split(",")]
    items = [item for item in items if item]
    if not all(_TOKEN_RE.fullmatch(item) for item in items):
        return False
    return items


def check_response(*, origin: str, credentials: bool, response_headers: Headers) -> Check:
    """Fetch, "CORS check", on a response (an actual response, a redirect, or a preflight)."""
    steps: list[str] = []
    # "1. Let origin be the result of getting `Access-Control-Allow-Origin` from
    # response's header list."
    allow_origin = _get(response_headers, "Access-Control-Allow-Origin")
    mode = "include" if credentials else "same-origin/omit"
    # "2. If origin is null, then return failure."
    if allow_origin is None:
        steps.append("Access-Control-Allow-Origin: absent -> fail")
        return Check(
            False,
            tuple(steps),
            "No 'Access-Control-Allow-Origin' header is present on the requested resource.",
        )
    # "3. If request's credentials mode is not "include" and origin is `*`, then
    # return success."
    if allow_origin == "*" and not credentials:
        steps.append("Access-Control-Allow-Origin: * and the request has no credentials -> pass")
        return Check(True, tuple(steps), "")
    if allow_origin == "*":
        steps.append("Access-Control-Allow-Origin: * but credentials mode is 'include' -> fail")
        return Check(
            False,
            tuple(steps),
            "The value of the 'Access-Control-Allow-Origin' header in the response must not"
            " be the wildcard '*' when the request's credentials mode is 'include'.",
        )
    # "4. If the result of byte-serializing a request origin with request is not
    # origin, then return failure." (byte equality: no case folding, no normalising)
    if allow_origin != origin:
        steps.append(f"Access-Control-Allow-Origin: {allow_origin!r} is not {origin!r} -> fail")
        return Check(False, tuple(steps), _origin_mismatch_reason(allow_origin))
    steps.append(f"Access-Control-Allow-Origin: {allow_origin!r} equals the page's origin")
    # "5. If request's credentials mode is not "include", then return success."
    if not credentials:
        steps.append(f"credentials mode is {mode}: Access-Control-Allow-Credentials not needed")
        return Check(True, tuple(steps), "")
    # "6. Let credentials be the result of getting `Access-Control-Allow-Credentials`
    # from response's header list. 7. If credentials is `true`, then return success."
    allow_credentials = _get(response_headers, "Access-Control-Allow-Credentials")
    if allow_credentials == "true":
        steps.append("Access-Control-Allow-Credentials: true (credentials mode 'include') -> pass")
        return Check(True, tuple(steps), "")
    # "8. Return failure."
    shown = allow_credentials if allow_credentials is not None else ""
    steps.append(f"Access-Control-Allow-Credentials: {shown!r} is not 'true' -> fail")
    return Check(
        False,
        tuple(steps),
        f"The value of the 'Access-Control-Allow-Credentials' header in the response is"
        f" '{shown}' which must be 'true' when the request's credentials mode is 'include'.",
    )


def _origin_mismatch_reason(allow_origin: str) -> str:
    # Chromium's console tells several values apart from one wrong value.
    if "," in allow_origin or " " in allow_origin:
        return (
            f"The 'Access-Control-Allow-Origin' header contains multiple values"
            f" '{allow_origin}', but only one is allowed. {_VALID}"
        )
    return (
        f"The 'Access-Control-Allow-Origin' header has a value '{allow_origin}' that is not"
        f" equal to the supplied origin. {_VALID}"
    )


_VALID = "Have the server send the header with a valid value."


_PREFLIGHT = "Response to preflight request doesn't pass access control check: "


def check_preflight(
    *,
    origin: str,
    method: str,
    header_names: Sequence[str],
    credentials: bool,
    status: int,
    response_headers: Headers,
) -> Check:
    """Fetch, "CORS-preflight fetch", step 7, on the answer to the browser's OPTIONS.

    ``method`` is what the page gave fetch(); ``header_names`` are the request's
    CORS-unsafe header names (what Access-Control-Request-Headers listed; see
    ``unsafe_header_names``).
    """
    if 300 <= status <= 399:
        # A redirect is not an ok status; Chromium says so before looking at anything else.
        line = f"status {status} is a redirect: a preflight is never redirected -> fail"
        return Check(
            False, (line,), _PREFLIGHT + "Redirect is not allowed for a preflight request."
        )
    # "7. If a CORS check for request and response returns success and response's
    # status is an ok status" -- on request, so the page's credentials mode is used.
    cors = check_response(origin=origin, credentials=credentials, response_headers=response_headers)
    steps = list(cors.steps)
    if not cors.ok:
        return Check(False, tuple(steps), _PREFLIGHT + cors.reason)
    if not 200 <= status <= 299:
        steps.append(f"status {status} is not an ok status (200-299) -> fail")
        return Check(False, tuple(steps), _PREFLIGHT + "It does not have HTTP ok status.")
    steps.append(f"status {status} is an ok status")
    # "7.1/7.2. Let methods / headerNames be the result of extracting header list
    # values given `Access-Control-Allow-Methods` / `-Headers`. 7.3. If either
    # methods or headerNames is failure, return a network error."
    methods = _extract_list(response_headers, "Access-Control-Allow-Methods")
    allowed_headers = _extract_list(response_headers, "Access-Control-Allow-Headers")
    for label, parsed in (("Methods", methods), ("Headers", allowed_headers)):
        if parsed is False:
            steps.append(f"Access-Control-Allow-{label} does not parse as a token list -> fail")
            return Check(
                False,
                tuple(steps),
                f"Cannot parse Access-Control-Allow-{label} response header field in"
                f" preflight response.",
            )
    method_check = _check_method(
        normalize_method(method), methods if isinstance(methods, list) else [], credentials
    )
    steps.extend(method_check.steps)
    if not method_check.ok:
        return Check(False, tuple(steps), method_check.reason, method_check.chromium_differs)
    header_check = _check_headers(
        header_names, allowed_headers if isinstance(allowed_headers, list) else [], credentials
    )
    steps.extend(header_check.steps)
    differs = method_check.chromium_differs or header_check.chromium_differs
    return Check(header_check.ok, tuple(steps), header_check.reason, differs)


def _check_method(method: str, methods: list[str], credentials: bool) -> Check:
    # "7.5. If request's method is not in methods, request's method is not a
    # CORS-safelisted method, and either request's credentials mode is "include" or
    # methods does not contain `*`, then return a network error." (byte comparison)
    listed = ", ".join(methods) or "nothing"
    if method in SAFELISTED_METHODS:
        line = f"method {method} is CORS-safelisted: Access-Control-Allow-Methods not needed"
        return Check(True, (line,), "")
    if method in methods:
        return Check(True, (f"method {method} is listed in Access-Control-Allow-Methods",), "")
    if "*" in methods and not credentials:
        return Check(True, (f"method {method} is covered by '*' (no credentials)",), "")
    why = " ('*' does not count with credentials)" if "*" in methods else ""
    case = (
        " (methods are compared case-sensitively)"
        if method.upper() in {m.upper() for m in methods}
        else ""
    )
    line = f"method {method} is not in Access-Control-Allow-Methods ({listed}){why}{case} -> fail"
    return Check(False, (line,), _method_reason(method))


def _check_headers(header_names: Iterable[str], allowed: list[str], credentials: bool) -> Check:
    allowed_lower = {name.lower() for name in allowed}
    wildcard = "*" in allowed_lower and not credentials
    listed = ", ".join(allowed) or "nothing"
    steps: list[str] = []
    differs = None
    for name in sorted({name.lower() for name in header_names}):
        if name in allowed_lower:
            steps.append(f"request header {name} is listed in Access-Control-Allow-Headers")
            continue
        # "7.6. If one of request's header list's names is a CORS non-wildcard
        # request-header name and is not a byte-case-insensitive match for an item in
        # headerNames, then return a network error."
        if wildcard and name in NON_WILDCARD_HEADERS:
            if CHROMIUM_WILDCARD_COVERS_AUTHORIZATION:
                differs = (
                    f"Chromium lets '*' in Access-Control-Allow-Headers cover {name} on a"
                    f" request without credentials; the Fetch standard does not (it must"
                    f" be listed by name)"
                )
                steps.append(f"request header {name} is covered by '*' in Chromium only")
                continue
            steps.append(f"request header {name} is never covered by '*': list it -> fail")
            return Check(False, tuple(steps), _header_reason(name), differs)
        # "7.7. For each unsafeName of the CORS-unsafe request-header names with
        # request's header list, if unsafeName is not a byte-case-insensitive match for
        # an item in headerNames and either request's credentials mode is "include" or
        # headerNames does not contain `*`, return a network error."
        if wildcard:
            steps.append(f"request header {name} is covered by '*' (no credentials)")
            continue
        why = " ('*' does not count with credentials)" if "*" in allowed_lower else ""
        steps.append(
            f"request header {name} is not in Access-Control-Allow-Headers ({listed}){why} -> fail"
        )
        return Check(False, tuple(steps), _header_reason(name), differs)
    if not steps:
        steps.append("no CORS-unsafe request headers: Access-Control-Allow-Headers not needed")
    return Check(True, tuple(steps), "", differs)


def _method_reason(method: str) -> str:
    return f"Method {method} is not allowed by Access-Control-Allow-Methods in preflight response."


def _header_reason(name: str) -> str:
    return (
        f"Request header field {name} is not allowed by Access-Control-Allow-Headers in"
        f" preflight response."
    )
