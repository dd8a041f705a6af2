"""The scheme same-origin detection rests on, and when it is in doubt."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from proxy.sameorigin import client_scheme, reported_schemes


@pytest.mark.parametrize(
    ("public_scheme", "forwarded", "trusted", "expected"),
    [
        (None, None, False, "http"),  # the guess: cors-edge's own listener
        ("https", None, False, "https"),  # stated
        ("https", "https", False, "https"),  # an untrusted terminator that agrees
        ("https", "HTTPS", False, "https"),
        ("https", "http", False, None),  # contradicted: in doubt
        (None, "https", False, None),  # the guess contradicted
        (None, "http", False, "http"),
        (None, "https", True, "https"),  # a trusted forwarder says so
        (None, "https, http", True, "https"),
        ("https", "http", True, None),  # trusted, but disagrees with what was stated
        ("http", "http", True, "http"),
        ("https", "", False, "https"),  # an empty header says nothing
        (None, "gopher", False, None),
    ],
)
def test_client_scheme(
    public_scheme: str | None, forwarded: str | None, trusted: bool, expected: str | None
) -> None:
    assert client_scheme(public_scheme, forwarded, trusted) == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ([], ()),
        ([("X-Forwarded-Proto", "HTTPS")], ("https",)),
        ([("X-Forwarded-Proto", "https, http")], ("https", "http")),
        ([("X-Forwarded-Proto", "https"), ("X-Forwarded-Proto", "http")], ("https", "http")),
        ([("Forwarded", 'for=1.2.3.4;proto=http;by="[::1]"')], ("http",)),
        ([("Forwarded", 'for=a;PROTO="HTTPS", for=b;proto=http')], ("https", "http")),
        ([("Forwarded", "for=a")], ()),
        ([("X-Forwarded-Proto", "https"), ("Forwarded", "proto=http")], ("https", "http")),
    ],
)
def test_reported_schemes(fields: list[tuple[str, str]], expected: tuple[str, ...]) -> None:
    assert reported_schemes(CIMultiDict(fields)) == expected


@pytest.mark.parametrize(
    ("public_scheme", "reported", "trusted", "expected"),
    [
        # untrusted: any report that disagrees puts the scheme in doubt
        ("https", ("https", "http"), False, None),
        (None, ("http", "https"), False, None),
        (None, ("http", "http"), False, "http"),
        # trusted: the first (outermost) report counts
        (None, ("https", "http"), True, "https"),
        ("https", ("http", "https"), True, None),
    ],
)
def test_client_scheme_weighs_every_report(
    public_scheme: str | None, reported: tuple[str, ...], trusted: bool, expected: str | None
) -> None:
    assert client_scheme(public_scheme, reported, trusted) == expected
