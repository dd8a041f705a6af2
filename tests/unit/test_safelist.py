"""What a page's fetch() sends (proxy/safelist.py): safelisting and the preflight's headers.

Chromium's agreement on the cases that tell safelisting apart (Range, Accept-Language,
Accept, Content-Type) is in tests/browser/test_probe_vs_chromium.py.
"""

from __future__ import annotations

import pytest

from proxy.safelist import needs_preflight, page_headers, preflight_request, unsafe_header_names

ORIGIN = "http://localhost:3000"


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        ("GET", [], False),
        ("get", [], False),  # fetch() upper-cases the six standard methods
        ("POST", [("Content-Type", "text/plain;charset=utf-8")], False),
        ("POST", [("Content-Type", "application/x-www-form-urlencoded")], False),
        ("POST", [("Content-Type", " multipart/form-data; boundary=x ")], False),
        ("POST", [("Content-Type", "application/json")], True),
        ("POST", [("Content-Type", 'text/plain; x="("')], True),  # unsafe byte
        ("HEAD", [("Accept", "application/json")], False),
        ("GET", [("Accept", "text/html{")], True),
        ("GET", [("Accept-Language", "en-US,fr;q=0.5")], False),
        ("GET", [("Accept-Language", "en_US")], True),
        ("GET", [("Content-Language", "de")], False),
        ("GET", [("Accept", "a" * 129)], True),  # longer than 128
        ("GET", [("Range", "bytes=0-99")], False),
        ("GET", [("Range", "bytes=5-")], False),
        ("GET", [("Range", "bytes=-500")], True),  # suffix range
        ("GET", [("Range", "bytes=9-2")], True),
        ("GET", [("X-Requested-With", "XMLHttpRequest")], True),
        ("GET", [("Authorization", "Bearer t")], True),
        ("GET", [("Cookie", "a=b")], False),  # forbidden: the page cannot set it
        ("GET", [("Sec-Foo", "1"), ("Proxy-Bar", "1")], False),
        ("PUT", [], True),
        ("PATCH", [], True),
        ("DELETE", [], True),
    ],
)
def test_needs_preflight(method: str, headers: list[tuple[str, str]], expected: bool) -> None:
    assert needs_preflight(method, headers) is expected


def test_safelisted_values_over_1024_bytes_in_total_make_them_all_unsafe() -> None:
    # Only reachable on a raw header list: fetch() combines repeated names, and one
    # value over 128 bytes is unsafe on its own.
    assert unsafe_header_names([("Accept", "a" * 128)] * 8) == []  # exactly 1024
    assert unsafe_header_names([("Accept", "a" * 128)] * 8 + [("Content-Language", "d")]) == [
        "accept",
        "content-language",
    ]
    # combined by the page's Headers object: one value longer than 128
    assert needs_preflight("GET", [("Accept-Language", "a" * 100)] * 2)


def test_page_headers_drop_forbidden_and_combine_repeats() -> None:
    built = page_headers(
        [("X-A", " 1 "), ("Host", "evil"), ("x-a", "2"), ("X-HTTP-Method-Override", "TRACE")]
    )
    assert built == [("X-A", "1, 2")]
    assert page_headers([("X-HTTP-Method-Override", "PUT")]) == [("X-HTTP-Method-Override", "PUT")]


def test_preflight_request_lists_unsafe_names_sorted_lowercase_without_spaces() -> None:
    sent = preflight_request(
        ORIGIN,
        "patch",
        [("X-B", "1"), ("Content-Type", "application/json"), ("Accept", "*/*"), ("x-a", "2")],
    )
    assert sent == [
        ("Accept", "*/*"),
        ("Access-Control-Request-Method", "patch"),  # not a normalised method: kept as is
        ("Access-Control-Request-Headers", "content-type,x-a,x-b"),
        ("Origin", ORIGIN),
    ]
    assert ("Access-Control-Request-Method", "DELETE") in preflight_request(ORIGIN, "delete", [])
    assert not any(
        name == "Access-Control-Request-Headers" for name, _ in preflight_request(ORIGIN, "PUT", [])
    )
