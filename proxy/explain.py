"""``cors-edge explain``: one browser request through the policy, then through the browser.

The engine decides what cors-edge would answer (proxy/cors.py); the browser's own
check (proxy/browser.py, the Fetch standard as Chromium applies it) then says what the
page gets from that answer, rule by rule. A refused origin is shown its near miss
(proxy/nearmiss.py), and a request that runs legacy code unreadable gets the warning
of proxy/advice.py. No server, no network.
"""

from __future__ import annotations

import argparse

from .advice import legacy_code_exposure
from .browser import (
    Check,
    check_preflight,
    check_response,
    needs_preflight,
    normalize_method,
    page_headers,
    preflight_request,
    unsafe_header_names,
)
from .cors import Decision, Verdict, decide
from .debug import decision_words, refused_origin_hint
from .origins import parse_origin
from .policy import Config, Unmatched


def run(args: argparse.Namespace, policies: Config) -> int:
    method = normalize_method(args.method)
    headers = page_headers([_header_arg(text) for text in args.header])
    unsafe = unsafe_header_names(headers)
    raw_path = args.path.split("#", 1)[0].split("?", 1)[0]  # as fetch() sends it
    self_origin = parse_origin(f"{policies.public_scheme or 'http'}://{args.host}")
    cross_origin = parse_origin(args.origin) != self_origin
    credentials = " with credentials" if args.credentials else ""
    print(f"request: {method} {args.path} from {args.origin}{credentials}")
    if needs_preflight(method, headers):
        verdict = _decide(
            policies,
            "OPTIONS",
            raw_path,
            args.origin,
            self_origin,
            request_method=method,
            request_headers=",".join(unsafe) or None,
        )
        print("\nstep 1, the browser's preflight:")
        print(f"  OPTIONS {args.path}")
        for name, value in preflight_request(args.origin, method, headers):
            print(f"  {name}: {value}")
        _print_verdict(verdict, policies, args.origin, cross_origin)
        if verdict.decision is Decision.NO_ROUTE:
            print("  browser:  depends on the upstream's answer (cors-edge probe URL asks it)")
            _print_exposure(verdict, cross_origin, preflight=True)
            print("\nthe browser needs a 2xx with CORS headers from the upstream to go on.")
            return 0
        check = check_preflight(
            origin=args.origin,
            method=method,
            header_names=unsafe,
            credentials=args.credentials,
            status=verdict.status or 0,
            response_headers=verdict.headers,
        )
        _print_check(check, "preflight passes")
        if not check.ok:
            print("\nthe browser stops here: the actual request is never sent.")
            return 0
        print("\nstep 2, the actual request:")
    else:
        print("\nno preflight: the browser sends the request directly (a simple request).")
    verdict = _decide(policies, method, raw_path, args.origin, self_origin)
    _print_verdict(verdict, policies, args.origin, cross_origin)
    if verdict.decision is Decision.NO_ROUTE:
        print("  browser:  depends on the upstream's own headers (cors-edge probe URL asks it)")
    else:
        _print_check(_browser_view(verdict, args.origin, args.credentials), "")
    _print_exposure(verdict, cross_origin)
    return 0


def _header_arg(text: str) -> tuple[str, str]:
    name, _, value = text.partition(":")
    return name.strip(), value.strip()


def _decide(
    policies: Config,
    method: str,
    raw_path: str,
    origin: str,
    self_origin: str | None,
    **preflight: str | None,
) -> Verdict:
    return decide(
        policies.routes,
        method,
        raw_path,
        [origin],
        self_origin=self_origin,
        block_unmatched=policies.unmatched is Unmatched.BLOCK,
        **preflight,
    )


def _print_verdict(verdict: Verdict, policies: Config, origin: str, cross_origin: bool) -> None:
    route = verdict.route
    if route is not None:
        print(f"  route:    {route.name} ({policies.source}:{route.line})")
        print(f"  origins:  {', '.join(route.origin_sources) or 'none (origins: [])'}")
        normalised = parse_origin(origin)
        allowed = normalised is not None and route.origins.allows(normalised)
        # The same words as serve --debug's CORS-Edge-Decision (proxy/debug.py).
        hint = refused_origin_hint(route, origin, allowed) if cross_origin else None
        if hint is not None:
            print(f"  hint:     {hint}")
    else:
        print("  route:    none")
    if verdict.routing_path is not None:
        print(f"  routed as {verdict.routing_path}")
    print(f"  decision: {decision_words(verdict)}")
    status = verdict.status
    if verdict.route is not None and verdict.route.shadow:
        print(
            "  answer:   enforce: shadow: forwarded to the upstream, whose own CORS headers "
            "the browser sees; below is what enforcing would send"
        )
    elif status is not None:
        print(f"  answer:   {status} from cors-edge (not forwarded to the upstream)")
    else:
        print("  answer:   forwarded to the upstream; its status, with these headers")
    if verdict.headers or verdict.vary:
        print("  headers:")
        for name, value in verdict.headers:
            print(f"    {name}: {value}")
        if verdict.vary:
            print(f"    Vary: {verdict.vary}")
    else:
        print("  headers:  none")


def _print_exposure(verdict: Verdict, cross_origin: bool, *, preflight: bool = False) -> None:
    exposure = legacy_code_exposure(verdict, cross_origin=cross_origin, preflight=preflight)
    if exposure is not None:
        print(f"  warning:  {exposure}")


def _print_check(check: Check, passed: str) -> None:
    """The browser's verdict, with each rule it applied (proxy/browser.py)."""
    print("  browser:")
    for step in check.steps:
        print(f"    {step}")
    if check.chromium_differs:
        print(f"    note: {check.chromium_differs}")
    if check.ok:
        print(f"  => {passed or 'the page can read the response'}")
    else:
        print(f"  => blocked: {check.reason}")


def _browser_view(verdict: Verdict, origin: str, credentials: bool) -> Check:
    """What the browser makes of the answer to the actual request."""
    decision = verdict.decision
    if decision in (Decision.SAME_ORIGIN, Decision.NO_ORIGIN):
        return Check(True, ("same origin: the browser applies no CORS check",), "")
    if decision is Decision.BAD_PATH:
        return Check(False, ("answered 400 Bad Request by cors-edge",), "400 Bad Request")
    check = check_response(origin=origin, credentials=credentials, response_headers=verdict.headers)
    if decision is Decision.BLOCKED:
        step = "the request never reaches the application: cors-edge answers 403"
        if verdict.route is not None and verdict.route.shadow:
            step = "enforced, cors-edge would answer 403 (in shadow the application runs)"
        return Check(False, (step, *check.steps), check.reason)
    if decision is Decision.UNENFORCED:
        step = "the application runs (enforce: false), but the answer carries no CORS headers"
        return Check(False, (step, *check.steps), check.reason)
    return check
