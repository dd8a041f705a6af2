"""The browser's CORS check (proxy/browser.py), rule by rule.

Each rule quoted in the module has a passing and a failing case here; the Chromium
differences are proven against a real Chromium in tests/browser/test_probe_vs_chromium.py.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from proxy import browser, safelist
from proxy.browser import check_preflight, check_response

ORIGIN = "http://localhost:3000"


def test_the_request_half_is_re_exported() -> None:
    # explain, test, probe and shadow mode import everything from proxy.browser
    for name in ("needs_preflight", "preflight_request", "unsafe_header_names", "page_headers"):
        assert getattr(browser, name) is getattr(safelist, name)


def test_module_is_pure() -> None:
    code = (
        "import proxy.browser, proxy.safelist, proxy.nearmiss, sys; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('yaml', 'aiohttp', 'socket')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- CORS check -------------------------------------------------------------------


def _response(creds: bool, *headers: tuple[str, str]) -> browser.Check:
    return check_response(origin=ORIGIN, credentials=creds, response_headers=list(headers))


def test_cors_check_missing_allow_origin() -> None:
    check = _response(False)
    assert not check.ok
    assert "No 'Access-Control-Allow-Origin' header is present" in check.reason


def test_cors_check_star_without_and_with_credentials() -> None:
    assert _response(False, ("Access-Control-Allow-Origin", "*")).ok
    check = _response(
        True, ("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Credentials", "true")
    )
    assert not check.ok
    assert "must not be the wildcard '*'" in check.reason


def test_cors_check_exact_origin_byte_for_byte() -> None:
    assert _response(False, ("access-control-allow-origin", ORIGIN)).ok
    for other in (ORIGIN + "/", "http://LOCALHOST:3000", "http://localhost:3001", "null"):
        check = _response(False, ("Access-Control-Allow-Origin", other))
        assert not check.ok, other
        assert "not equal to the supplied origin" in check.reason


def test_cors_check_two_values_fail() -> None:
    check = _response(
        False, ("Access-Control-Allow-Origin", ORIGIN), ("Access-Control-Allow-Origin", ORIGIN)
    )
    assert not check.ok
    assert "multiple values" in check.reason
    assert not _response(False, ("Access-Control-Allow-Origin", f"{ORIGIN} {ORIGIN}")).ok


def test_cors_check_null_origin_needs_null() -> None:
    ok = check_response(
        origin="null", credentials=False, response_headers=[("Access-Control-Allow-Origin", "null")]
    )
    assert ok.ok


@pytest.mark.parametrize(
    ("value", "ok"), [("true", True), (None, False), ("True", False), ("false", False)]
)
def test_cors_check_credentials_must_be_exactly_true(value: str | None, ok: bool) -> None:
    headers = [("Access-Control-Allow-Origin", ORIGIN)]
    if value is not None:
        headers.append(("Access-Control-Allow-Credentials", value))
    check = check_response(origin=ORIGIN, credentials=True, response_headers=headers)
    assert check.ok is ok
    if not ok:
        assert "must be 'true' when the request's credentials mode is 'include'" in check.reason
    # without credentials the header is not looked at
    assert check_response(origin=ORIGIN, credentials=False, response_headers=headers).ok


def test_cors_check_steps_say_what_was_applied() -> None:
    check = _response(
        True, ("Access-Control-Allow-Origin", ORIGIN), ("Access-Control-Allow-Credentials", "true")
    )
    assert check.ok
    assert len(check.steps) == 2
    assert "equals the page's origin" in check.steps[0]
    assert check.reason == ""


# --- CORS-preflight fetch ---------------------------------------------------------


def _preflight(
    method: str = "PUT",
    names: tuple[str, ...] = (),
    creds: bool = False,
    status: int = 204,
    *headers: tuple[str, str],
) -> browser.Check:
    return check_preflight(
        origin=ORIGIN,
        method=method,
        header_names=names,
        credentials=creds,
        status=status,
        response_headers=[("Access-Control-Allow-Origin", ORIGIN), *headers],
    )


def test_preflight_passes_with_method_and_headers_listed() -> None:
    check = _preflight(
        "PUT",
        ("content-type", "x-token"),
        False,
        200,
        ("Access-Control-Allow-Methods", "GET, PUT"),
        ("Access-Control-Allow-Headers", "Content-Type,X-Token"),
    )
    assert check.ok, check
    assert check.chromium_differs is None


@pytest.mark.parametrize("status", [400, 403, 404, 500])
def test_preflight_needs_an_ok_status(status: int) -> None:
    check = _preflight("PUT", (), False, status, ("Access-Control-Allow-Methods", "PUT"))
    assert not check.ok
    assert check.reason.endswith("It does not have HTTP ok status.")
    assert check.reason.startswith("Response to preflight request doesn't pass")
    for ok in (200, 204, 299):
        assert _preflight("PUT", (), False, ok, ("Access-Control-Allow-Methods", "PUT")).ok


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_preflight_is_never_redirected(status: int) -> None:
    check = _preflight("PUT", (), False, status, ("Access-Control-Allow-Methods", "PUT"))
    assert not check.ok
    assert check.reason.endswith("Redirect is not allowed for a preflight request.")


def test_preflight_runs_the_cors_check_with_the_requests_credentials() -> None:
    check = check_preflight(
        origin=ORIGIN,
        method="PUT",
        header_names=(),
        credentials=True,
        status=204,
        response_headers=[
            ("Access-Control-Allow-Origin", ORIGIN),
            ("Access-Control-Allow-Methods", "PUT"),
        ],
    )
    assert not check.ok
    assert "Access-Control-Allow-Credentials" in check.reason


def test_preflight_method_missing() -> None:
    check = _preflight("DELETE", (), False, 204, ("Access-Control-Allow-Methods", "GET, POST"))
    assert not check.ok
    assert check.reason == (
        "Method DELETE is not allowed by Access-Control-Allow-Methods in preflight response."
    )


def test_preflight_methods_compare_case_sensitively() -> None:
    assert not _preflight("patch", (), False, 204, ("Access-Control-Allow-Methods", "PATCH")).ok
    assert _preflight("patch", (), False, 204, ("Access-Control-Allow-Methods", "patch")).ok
    # fetch() normalises delete to DELETE before the comparison
    assert _preflight("delete", (), False, 204, ("Access-Control-Allow-Methods", "DELETE")).ok


def test_preflight_safelisted_method_needs_no_listing() -> None:
    assert _preflight("POST", ("x-a",), False, 204, ("Access-Control-Allow-Headers", "x-a")).ok


def test_preflight_method_star_only_without_credentials() -> None:
    star = ("Access-Control-Allow-Methods", "*")
    assert _preflight("PATCH", (), False, 204, star).ok
    creds = ("Access-Control-Allow-Credentials", "true")
    check = _preflight("PATCH", (), True, 204, star, creds)
    assert not check.ok
    assert "Method PATCH is not allowed" in check.reason


def test_preflight_header_missing_names_it_lowercase() -> None:
    check = _preflight(
        "PUT", ("x-token",), False, 204,
        ("Access-Control-Allow-Methods", "PUT"),
        ("Access-Control-Allow-Headers", "Content-Type"),
    )  # fmt: skip
    assert not check.ok
    assert check.reason == (
        "Request header field x-token is not allowed by Access-Control-Allow-Headers in"
        " preflight response."
    )


def test_preflight_header_star_only_without_credentials() -> None:
    star = [("Access-Control-Allow-Methods", "PUT"), ("Access-Control-Allow-Headers", "*")]
    assert _preflight("PUT", ("x-token",), False, 204, *star).ok
    creds = ("Access-Control-Allow-Credentials", "true")
    assert not _preflight("PUT", ("x-token",), True, 204, *star, creds).ok


def test_star_covers_authorization_in_chromium_not_in_the_standard() -> None:
    star = [("Access-Control-Allow-Methods", "PUT"), ("Access-Control-Allow-Headers", "*")]
    check = _preflight("PUT", ("authorization",), False, 204, *star)
    assert check.ok is browser.CHROMIUM_WILDCARD_COVERS_AUTHORIZATION
    assert check.chromium_differs is not None
    assert "Authorization" in check.chromium_differs or "authorization" in check.chromium_differs
    # listed by name: no difference at all
    named = [
        ("Access-Control-Allow-Methods", "PUT"),
        ("Access-Control-Allow-Headers", "*, Authorization"),
    ]
    listed = _preflight("PUT", ("authorization",), False, 204, *named)
    assert listed.ok
    assert listed.chromium_differs is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Access-Control-Allow-Methods", "PUT, (DELETE)"),
        ("Access-Control-Allow-Headers", "x-a; x-b"),
        ("Access-Control-Allow-Headers", "x a"),
    ],
)
def test_preflight_unparsable_lists_fail(name: str, value: str) -> None:
    check = _preflight(
        "PUT", ("x-a",), False, 204, ("Access-Control-Allow-Methods", "PUT"), (name, value)
    )
    assert not check.ok
    assert check.reason.startswith("Cannot parse " + name)


def test_preflight_empty_list_items_are_allowed() -> None:
    check = _preflight(
        "PUT", ("x-a",), False, 204,
        ("Access-Control-Allow-Methods", "GET, , PUT,"),
        ("Access-Control-Allow-Headers", ",x-a"),
    )  # fmt: skip
    assert check.ok, check


def test_preflight_lists_may_come_in_several_headers() -> None:
    check = _preflight(
        "PUT", ("x-a", "x-b"), False, 204,
        ("Access-Control-Allow-Methods", "GET"),
        ("Access-Control-Allow-Methods", "PUT"),
        ("Access-Control-Allow-Headers", "x-a"),
        ("Access-Control-Allow-Headers", "X-B"),
    )  # fmt: skip
    assert check.ok, check
