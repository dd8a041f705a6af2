"""proxy/debug.py: the CORS-Edge-Decision header, explain's words, the loopback rule."""

from __future__ import annotations

import subprocess
import sys

import pytest

from proxy.cors import Decision, Verdict, VerdictCache, decide
from proxy.debug import (
    HEADER,
    DebugRefused,
    annotator,
    debug_annotator,
    decision_words,
    header_value,
    is_loopback,
    listener_refusal,
    with_debug_header,
)
from proxy.loader import load_policy_text
from proxy.records import PolicyHolder

CONFIG = load_policy_text(
    "unmatched: block\n"
    "routes:\n  - path: /api/**\n    origins: [http://localhost:3000]\n"
    "    supports_credentials: true\n    expose_headers: [X-Total-Count]\n"
    "    methods: [GET, PUT]\n"
    "  - path: /plain/**\n    origins: [http://localhost:3000]\n"
    "  - path: /public/**\n    origins: '*'\n"
)
ROUTES = CONFIG.routes
APP = "http://localhost:3000"
API = 'route="routes[0] path /api/**"'


def _debug(verdict: Verdict) -> str:
    return dict(with_debug_header(verdict, header_value(verdict)).answer_headers())[HEADER]


def test_the_header_says_decision_route_and_reason_in_explains_words() -> None:
    verdict = decide(ROUTES, "GET", "/api/x", ["https://evil.test"])
    assert decision_words(verdict) == (
        "blocked: origin https://evil.test is not allowed by routes[0] path /api/**"
    )
    assert header_value(verdict) == (
        f'blocked; {API}; reason="origin https://evil.test is not allowed by '
        'routes[0] path /api/**"'
    )
    no_route = decide(ROUTES, "GET", "/admin", [APP], block_unmatched=True)
    assert header_value(no_route).startswith("blocked; route=none; reason=")


def test_the_header_is_one_safe_line_whatever_the_words() -> None:
    verdict = Verdict(Decision.BLOCKED, None, (), None, 'say "hi" \\ to\r\nX-Evil: 1 \u00e9\u2603')
    value = header_value(verdict, hint="\x00more")
    assert value == 'blocked; route=none; reason="say \\"hi\\" \\\\ to??X-Evil: 1 ??; ?more"'
    assert value.isascii() and "\r" not in value and "\n" not in value


def test_every_answer_carries_it_refusals_too() -> None:
    refused = decide(ROUTES, "OPTIONS", "/api/x", [APP], request_method="PATCH")
    blocked = decide(ROUTES, "GET", "/api/x", ["https://evil.test"])
    bad = decide(ROUTES, "GET", "/api/%2e%2e/x", [APP])
    for verdict in (refused, blocked, bad):
        headers = with_debug_header(verdict, "v").answer_headers()
        assert (HEADER, "v") in headers
        assert not any(name.startswith("Access-Control-") for name, _ in headers)
    assert bad.decision is Decision.BAD_PATH


def test_it_is_exposed_where_the_origin_is_stamped_on_an_actual_response() -> None:
    listed = with_debug_header(decide(ROUTES, "GET", "/api/x", [APP]), "v")
    assert ("Access-Control-Expose-Headers", f"X-Total-Count, {HEADER}") in listed.headers
    plain = with_debug_header(decide(ROUTES, "GET", "/plain/x", [APP]), "v")
    assert ("Access-Control-Expose-Headers", HEADER) in plain.headers
    public = with_debug_header(decide(ROUTES, "GET", "/public/x", []), "v")
    assert ("Access-Control-Expose-Headers", HEADER) in public.headers


def test_a_preflight_answer_lists_nothing_to_expose() -> None:
    preflight = decide(ROUTES, "OPTIONS", "/api/x", [APP], request_method="PUT")
    annotated = with_debug_header(preflight, "v")
    assert annotated.headers == preflight.headers
    assert (HEADER, "v") in annotated.answer_headers()


def test_a_verdict_without_debug_has_no_header() -> None:
    headers = decide(ROUTES, "GET", "/api/x", [APP]).answer_headers()
    assert HEADER not in dict(headers)
    assert dict(headers)["Access-Control-Expose-Headers"] == "X-Total-Count"


def test_the_cache_builds_the_header_once_per_verdict() -> None:
    calls: list[tuple[str, ...]] = []
    annotate = annotator(public=False)

    def counting(verdict: Verdict, origins: object) -> Verdict:
        calls.append(tuple(origins))  # type: ignore[arg-type]
        return annotate(verdict, origins)  # type: ignore[arg-type]

    cache = VerdictCache(CONFIG, annotate=counting)
    args = ("GET", "/api/x", [APP], None, None, None, "http", "edge")
    first = cache.decide(*args)
    again = cache.decide(*args)
    assert first is again and calls == [(APP,)]
    assert dict(first.answer_headers())[HEADER].startswith("allowed; ")


def test_the_holder_keeps_its_annotator_across_swaps() -> None:
    holder = PolicyHolder(CONFIG, annotator(public=True))
    holder.swap(CONFIG)
    verdict = holder.snapshot.verdicts.decide(
        "GET", "/api/x", [APP], None, None, None, "http", "edge"
    )
    assert HEADER in dict(verdict.answer_headers())
    plain = PolicyHolder(CONFIG).snapshot.verdicts.decide(
        "GET", "/api/x", [APP], None, None, None, "http", "edge"
    )
    assert HEADER not in dict(plain.answer_headers())


@pytest.mark.parametrize(
    ("listen", "loopback"),
    [
        ("127.0.0.1:8080", True),
        ("127.8.9.1:0", True),
        ("localhost:8080", True),
        ("[::1]:8080", True),
        ("0.0.0.0:8080", False),
        ("[::]:8080", False),
        (":8080", False),
        ("192.168.1.10:8080", False),
        ("edge.internal:8080", False),
    ],
)
def test_loopback_listeners(listen: str, loopback: bool) -> None:
    assert is_loopback(listen) is loopback
    assert (listener_refusal(listen) is None) is loopback


def test_debug_on_a_public_listener_needs_debug_public() -> None:
    assert debug_annotator(None, "0.0.0.0:8080") is None
    with pytest.raises(DebugRefused, match="--debug-public"):
        debug_annotator("loopback", "0.0.0.0:8080")
    assert debug_annotator("public", "0.0.0.0:8080") is not None
    assert debug_annotator("loopback", "127.0.0.1:8080") is not None


@pytest.mark.parametrize(
    ("origin", "differs"),
    [
        ("http://localhost:3001", "port: 3001, allowed 3000"),
        ("https://localhost:3000", "scheme: https, allowed http"),
        ("http://localhost:3000/", "a trailing slash"),
        ("http://127.0.0.1:3000", "host: 127.0.0.1, allowed localhost"),
        ("http://www.localhost:3000", "www.: www.localhost, allowed localhost"),
    ],
)
def test_a_refused_origin_is_told_its_near_miss_on_loopback(origin: str, differs: str) -> None:
    blocked = decide(ROUTES, "GET", "/api/x", [origin])
    preflight = decide(ROUTES, "OPTIONS", "/api/x", [origin], request_method="GET")
    for verdict in (blocked, preflight):
        assert verdict.decision in (Decision.BLOCKED, Decision.PREFLIGHT_REFUSED)
        value = dict(annotator(public=False)(verdict, [origin]).answer_headers())[HEADER]
        assert f"; nearest allowed origin: {APP}; differs in " in value
        assert differs in value
        # the public header says why, never what would have been allowed
        public = dict(annotator(public=True)(verdict, [origin]).answer_headers())[HEADER]
        assert APP not in public and "nearest" not in public
        assert public.startswith(f"{verdict.decision.value}; {API}; reason=")


def test_no_hint_when_the_origin_is_not_what_failed() -> None:
    method = decide(ROUTES, "OPTIONS", "/api/x", [APP], request_method="DELETE")
    assert method.decision is Decision.PREFLIGHT_REFUSED
    value = dict(annotator(public=False)(method, [APP]).answer_headers())[HEADER]
    assert "nearest" not in value and "method DELETE is not in" in value
    far = decide(ROUTES, "GET", "/api/x", ["https://evil.test"])
    assert "nearest" not in dict(annotator(public=False)(far, ["https://evil.test"]).extra)[HEADER]


def test_local_dev_mode_turns_debug_on_only_on_loopback() -> None:
    assert debug_annotator("auto", "127.0.0.1:8080") is not None
    assert debug_annotator("auto", "0.0.0.0:8080") is None  # off, not refused


def test_a_shadow_route_says_shadow_as_the_access_log_does() -> None:
    routes = load_policy_text(
        "routes:\n  - path: /api/**\n    origins: [http://localhost:3000]\n    enforce: shadow\n"
    ).routes
    verdict = decide(routes, "GET", "/api/x", ["https://evil.test"])
    assert header_value(verdict).startswith('shadow:blocked; route="routes[0] path /api/**"; ')


def test_module_is_pure() -> None:
    code = (
        "import proxy.debug, sys; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('yaml', 'aiohttp', 'socket')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_hostile_origin_cannot_make_the_header_huge() -> None:
    origin = "http://localhost:3000/" + "a" * 7000
    verdict = decide(ROUTES, "GET", "/api/x", [origin])
    value = dict(annotator(public=False)(verdict, [origin]).extra)[HEADER]
    assert len(value) < 700 and value.endswith('..."')
