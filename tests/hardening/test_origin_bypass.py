"""Hostile ``Origin`` values against a real cors-edge, and the matcher against a reference.

The route ``/api/**`` allows, with credentials, exactly ``https://app.example.com``,
``http://localhost:3000``, any subdomain of ``https://*.trusted.com`` and
``^https://pr-[0-9]+\\.preview\\.example\\.org$``. Nothing else may ever receive an
``Access-Control-Allow-Origin``, and no hostile string may ever be echoed.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.origins import DEFAULT_PORTS, OriginSet, SubdomainWildcard, parse_origin

from .conftest import HardEdge, assert_exits_without_tracebacks, marker, raw_exchange, request_bytes

LONG_LABEL = "a" * 60
HOSTILE_ORIGINS: list[str] = [
    # suffix and prefix tricks
    "https://app.example.com.evil.com",
    "https://app.example.com.",
    "https://evilapp.example.com",
    "https://evil-app.example.com",
    "https://evilexample.com",
    "https://app.example.co",
    "https://app.example.comm",
    "https://app_example.com",
    "https://app-example.com",
    # scheme downgrade and other schemes
    "http://app.example.com",
    "ws://app.example.com",
    "wss://app.example.com",
    "javascript://app.example.com",
    "file://app.example.com",
    # other ports
    "https://app.example.com:8443",
    "https://app.example.com:444",
    "https://app.example.com:0443",
    "https://app.example.com:99999",
    "https://app.example.com:",
    "http://localhost:30000",
    "http://localhost:300",
    "http://localhost",
    "http://127.0.0.1:3000",
    "http://localhost:3000.evil.com",
    # null and lookalikes
    "null",
    "NULL",
    "Null",
    "null null",
    # userinfo, path, query, fragment
    "https://user@app.example.com",
    "https://app.example.com@evil.com",
    "https://user:pw@app.example.com",
    "https://evil.com#@app.example.com",
    "https://evil.com?@app.example.com",
    "https://app.example.com/",
    "https://app.example.com/path",
    "https://app.example.com?x=1",
    "https://app.example.com#frag",
    "https://app.example.com\\@evil.com",
    "https%3A%2F%2Fapp.example.com",
    "//app.example.com",
    "app.example.com",
    # whitespace and lists
    "https://app.example.com https://evil.com",
    "https://evil.com https://app.example.com",
    "https://app.example.com, https://evil.com",
    "https://app.example.com,https://app.example.com",
    "https://app.\texample.com",
    "https:// app.example.com",
    # unicode and punycode
    "https://\u0430pp.example.com",  # Cyrillic a
    "https://app.ex\u00e4mple.com",
    "https://app.example\u3002com",  # ideographic full stop
    "https://app\uff0eexample.com",  # fullwidth full stop
    "https://xn--pp-8cd.example.com",
    "https://app.xn--exmple-cua.com",
    "https://a.trusted.com\u200b",  # zero-width space
    # regex origin: unescaped-dot and anchoring tricks
    "https://pr-1Xpreview.example.org",
    "https://pr-1.previewXexample.org",
    "https://pr-1.preview.exampleXorg",
    "https://pr-1.preview.example.org.evil.com",
    "https://xpr-1.preview.example.org",
    "https://pr-.preview.example.org",
    "https://pr-1a.preview.example.org",
    "https://pr-1.preview.example.org:8443",
    "http://pr-1.preview.example.org",
    "https://evil.com/https://pr-1.preview.example.org",
    # subdomain wildcard: apex, lookalikes, schemes, ports, empty labels
    "https://trusted.com",
    "https://eviltrusted.com",
    "https://trusted.com.evil.com",
    "https://a.trusted.com.evil.com",
    "https://a.trusted.comevil.com",
    "http://a.trusted.com",
    "https://a.trusted.com:8443",
    "https://.trusted.com",
    "https://a..trusted.com",
    "https://a.trusted.com.",
    "https://*.trusted.com",
    "https://[::1]",
    "https://127.0.0.1",
    # oversized (within the header limit: refused by the origin parser)
    "https://" + ".".join([LONG_LABEL] * 40) + ".trusted.com",
]
# Refused by the HTTP parser itself (400) or sent as separate header lines.
CONTROL_ORIGINS: list[bytes] = [
    b"https://app.example.com\x00",
    b"https://app.example.com\x01",
    b"https://app.example.com\x7f",
    b"https://app.example.com\x1b[31m",
    b"https://app.example.com\rAccess-Control-Allow-Origin: https://evil.com",
    b"https://app.example.com\nAccess-Control-Allow-Origin: https://evil.com",
    b"https://evil.com\r\nAccess-Control-Allow-Origin: https://evil.com",
    b"https://evil.com\r\n X-Folded: https://app.example.com",
]
ALLOWED_ORIGINS: dict[str, str] = {
    "https://app.example.com": "https://app.example.com",
    "http://localhost:3000": "http://localhost:3000",
    "https://a.trusted.com": "https://a.trusted.com",
    "https://a.b.trusted.com": "https://a.b.trusted.com",
    "https://pr-12.preview.example.org": "https://pr-12.preview.example.org",
    # not what a browser sends, but the same origin once normalised: the answer is
    # the normalised form, never the raw string
    "HTTPS://APP.EXAMPLE.COM": "https://app.example.com",
    "https://app.example.com:443": "https://app.example.com",
    "https://A.Trusted.Com": "https://a.trusted.com",
}


def _preflight(origin: bytes) -> bytes:
    return (
        b"OPTIONS /api/items HTTP/1.1\r\nHost: cors-edge.test\r\nOrigin: "
        + origin
        + b"\r\nAccess-Control-Request-Method: PUT\r\n"
        b"Access-Control-Request-Headers: content-type\r\n\r\n"
    )


def _actual(origin: bytes, mark: str) -> bytes:
    return (
        b"GET /api/items HTTP/1.1\r\nHost: cors-edge.test\r\nOrigin: "
        + origin
        + b"\r\nX-Test-Marker: "
        + mark.encode()
        + b"\r\nCookie: session=legacy-session-42\r\n\r\n"
    )


def _send_refused(hard_edge: HardEdge, origin: bytes) -> str:
    mark = marker()
    for payload in (_preflight(origin), _actual(origin, mark)):
        responses, _, raw = raw_exchange(hard_edge.port, payload, timeout=3.0)
        assert responses, f"{origin!r}: no response at all ({raw!r})"
        response = responses[0]
        assert response.status in (400, 403, 431), (origin, response.head)
        assert response.cors_headers() == [], (origin, response.head)
        assert "Set-Cookie" not in response.head
        text = origin.decode("utf-8", "surrogateescape")
        for token in re.split(r"[\r\n\t ,]+", text):
            if len(token) > 8 and not ALLOWED_ORIGINS.get(token):
                assert token not in response.head, f"echoed {token!r}: {response.head}"
    return mark


def test_hostile_origins_get_no_cors_and_never_reach_flask(hard_edge: HardEdge) -> None:
    assert len(HOSTILE_ORIGINS) + len(CONTROL_ORIGINS) >= 40
    marks = [_send_refused(hard_edge, origin.encode("utf-8")) for origin in HOSTILE_ORIGINS]
    marks += [_send_refused(hard_edge, origin) for origin in CONTROL_ORIGINS]
    # enforce: true, so not one of the refused cross-origin requests ran legacy code
    assert not set(marks) & hard_edge.flask_markers()


def test_8kb_origin_is_431_without_cors(hard_edge: HardEdge) -> None:
    origin = ("https://" + "a" * 8192 + ".trusted.com").encode()
    mark = _send_refused(hard_edge, origin)
    responses, closed, _ = raw_exchange(hard_edge.port, _actual(origin, mark), expect=0)
    assert responses[0].status == 431
    assert closed
    assert mark not in hard_edge.flask_markers()


def test_duplicate_origin_headers_are_refused(hard_edge: HardEdge) -> None:
    for first, second in (
        (b"https://app.example.com", b"https://app.example.com"),
        (b"https://app.example.com", b"https://evil.com"),
        (b"https://evil.com", b"https://app.example.com"),
    ):
        _send_refused(hard_edge, first + b"\r\nOrigin: " + second)


def _send_allowed(hard_edge: HardEdge, origin: str, normalised: str) -> None:
    preflights, _, _ = raw_exchange(hard_edge.port, _preflight(origin.encode()))
    assert preflights[0].status == 204
    assert preflights[0].header("Access-Control-Allow-Origin") == normalised
    assert preflights[0].header("Access-Control-Allow-Credentials") == "true"
    mark = marker()
    actuals, _, _ = raw_exchange(hard_edge.port, _actual(origin.encode(), mark))
    assert actuals[0].status == 200
    assert actuals[0].header("Access-Control-Allow-Origin") == normalised
    assert "Origin" in (actuals[0].header("Vary") or "")
    assert mark in hard_edge.flask_markers()


@pytest.mark.parametrize(("origin", "normalised"), sorted(ALLOWED_ORIGINS.items()))
def test_allowed_origins_get_the_normalised_origin(
    hard_edge: HardEdge, origin: str, normalised: str
) -> None:
    _send_allowed(hard_edge, origin, normalised)


def test_hostile_origins_on_a_wildcard_route_get_a_plain_star(hard_edge: HardEdge) -> None:
    """``origins: "*"``: the answer is ``*``, never a reflection of the hostile value."""
    for origin in [*HOSTILE_ORIGINS[:20], "https://evil.com"]:
        request = request_bytes("GET", "/public/status", [("Origin", origin)])
        responses, _, _ = raw_exchange(hard_edge.port, request)
        response = responses[0]
        assert response.header("Access-Control-Allow-Credentials") is None
        if parse_origin(origin) is None:
            # not a serialised origin: never allowed, even by "*"
            assert response.status == 403, origin
            assert response.cors_headers() == []
        else:
            assert response.status == 200, origin
            assert response.header("Access-Control-Allow-Origin") == "*"


def test_no_tracebacks_on_stderr(own_hard_edge: HardEdge) -> None:
    """Every hostile, control-character, duplicated, oversized and allowed origin above,
    sent to an edge of this test's own, is answered as above, and not one leaves a
    traceback on its stderr."""
    for origin in HOSTILE_ORIGINS:
        _send_refused(own_hard_edge, origin.encode("utf-8"))
    for raw in [*CONTROL_ORIGINS, b"https://evil.com\r\nOrigin: https://app.example.com"]:
        _send_refused(own_hard_edge, raw)
    _send_refused(own_hard_edge, ("https://" + "a" * 8192 + ".trusted.com").encode())
    for origin, normalised in ALLOWED_ORIGINS.items():
        _send_allowed(own_hard_edge, origin, normalised)
    assert_exits_without_tracebacks(own_hard_edge.edge)


# --- the matcher against a reference definition --------------------------------

_label = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_scheme = st.sampled_from(["http", "https", "HTTP", "Https", "ws", "ftp"])
_port = st.one_of(st.none(), st.sampled_from([80, 443, 8080, 3000]), st.integers(1, 65535))


@st.composite
def _origin_parts(draw: st.DrawFn) -> tuple[str, list[str], int | None]:
    scheme = draw(_scheme)
    labels = draw(st.lists(_label, min_size=1, max_size=5))
    if draw(st.booleans()):
        # lean on the configured names so matches are actually found
        labels += draw(st.sampled_from([["trusted", "com"], ["example", "com"], ["com"]]))
    labels = [
        label.upper() if draw(st.booleans()) and len(label) < 3 else label for label in labels
    ]
    return scheme, labels, draw(_port)


def _text(scheme: str, labels: list[str], port: int | None) -> str:
    return f"{scheme}://{'.'.join(labels)}" + ("" if port is None else f":{port}")


def _reference_key(scheme: str, labels: list[str], port: int | None) -> tuple[str, str, int | None]:
    """Scheme, host, effective port: what RFC 6454 compares."""
    scheme = scheme.lower()
    effective = port if port is not None else DEFAULT_PORTS.get(scheme)
    return scheme, ".".join(labels).lower(), effective


def _reference_serialise(scheme: str, labels: list[str], port: int | None) -> str:
    scheme, host, effective = _reference_key(scheme, labels, port)
    if effective is None or effective == DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{effective}"


_CONFIGURED = [
    ("https", ["app", "example", "com"], None),
    ("http", ["localhost"], 3000),
    ("https", ["trusted", "com"], 443),
]


@settings(max_examples=200, deadline=None)
@given(_origin_parts(), st.sampled_from(_CONFIGURED))
def test_exact_matcher_agrees_with_reference(
    parts: tuple[str, list[str], int | None], configured: tuple[str, list[str], int | None]
) -> None:
    origins = OriginSet.build(exact=[parse_origin(_text(*configured)) or "?"])
    parsed = parse_origin(_text(*parts))
    assert parsed is not None
    assert parsed == _reference_serialise(*parts)
    assert origins.allows(parsed) == (_reference_key(*parts) == _reference_key(*configured))


@settings(max_examples=200, deadline=None)
@given(_origin_parts(), st.sampled_from(["https", "http"]), st.sampled_from([None, 8443]))
def test_wildcard_matcher_agrees_with_reference(
    parts: tuple[str, list[str], int | None], w_scheme: str, w_port: int | None
) -> None:
    wildcard = f"{w_scheme}://*.trusted.com" + ("" if w_port is None else f":{w_port}")
    origins = OriginSet.build(wildcards=[SubdomainWildcard.parse(wildcard)])
    parsed = parse_origin(_text(*parts))
    assert parsed is not None
    scheme, host, effective = _reference_key(*parts)
    expected = (
        scheme == w_scheme
        and effective == (w_port if w_port is not None else DEFAULT_PORTS[w_scheme])
        and host.endswith(".trusted.com")
        and len(host) > len(".trusted.com")
    )
    assert origins.allows(parsed) == expected


_REGEXES = [
    r"^https://pr-[0-9]+\.preview\.example\.com$",
    r"https://[a-z]+\.trusted\.com",
    r"^https?://(app|api)\.example\.com(:8080)?$",
    r"^https://.*\.trusted\.com$",
]


@settings(max_examples=200, deadline=None)
@given(_origin_parts(), st.sampled_from(_REGEXES))
def test_regex_matcher_agrees_with_reference(
    parts: tuple[str, list[str], int | None], pattern: str
) -> None:
    origins = OriginSet.build(regexes=[re.compile(pattern)])
    parsed = parse_origin(_text(*parts))
    assert parsed is not None
    expected = re.fullmatch(pattern, _reference_serialise(*parts)) is not None
    assert origins.allows(parsed) == expected


@settings(max_examples=500, deadline=None)
@given(st.text(min_size=0, max_size=80))
def test_parse_origin_is_strict_and_idempotent(text: str) -> None:
    parsed = parse_origin(text)
    if parsed is None:
        return
    assert parsed == "null" or re.fullmatch(r"[a-z][a-z0-9+.\-]*://[a-z0-9_.\-\[\]:]+", parsed)
    assert parse_origin(parsed) == parsed
    assert not any(ch.isspace() or ord(ch) < 0x21 or ord(ch) > 0x7E for ch in text)


@pytest.mark.parametrize("pattern", [r"^.*$", r"n.*", r"^(null|https://app\.example\.com)$"])
def test_null_is_never_matched_by_a_regex(pattern: str) -> None:
    """DESIGN: ``null`` matches only when listed literally as ``"null"``."""
    origins = OriginSet.build(regexes=[re.compile(pattern)])
    assert not origins.allows("null")
    assert OriginSet.build(exact=["null"], regexes=[re.compile(pattern)]).allows("null")
