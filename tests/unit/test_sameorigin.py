"""The scheme same-origin detection rests on, and when it is in doubt."""

from __future__ import annotations

import pytest

from proxy.sameorigin import client_scheme


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
