"""``cors-edge test``: policy expectations checked by the engine alone, as a browser would judge.

Each case is a page's ``fetch()``: the preflight when the browser would send one, then
the actual request. The engine decides each; the browser's own check
(:mod:`proxy.browser`) is applied to the headers cors-edge would send. Where cors-edge
forwards without stamping (no route), the upstream is taken to send no CORS headers:
that is the app once Flask-CORS is removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import yaml

from . import browser
from .cors import Verdict, decide
from .drafts import PolicyError
from .loader import load_policy_file
from .nearmiss import nearest
from .origins import parse_origin
from .policy import Config, Unmatched
from .yamlwalk import Walker, compose

_CASE_KEYS = frozenset(
    {"name", "origin", "method", "path", "headers", "credentials", "expect", "reaches_upstream"}
)
_EXPECT = ("allowed", "refused")


@dataclass(frozen=True)
class Case:
    name: str
    line: int
    origin: str
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    credentials: bool
    expect_allowed: bool
    reaches_upstream: bool | None


@dataclass(frozen=True)
class Outcome:
    allowed: bool
    reaches_upstream: bool
    reason: str


def parse_cases(text: str, source: str) -> list[Case]:
    """The cases of a cases file, or raise :class:`PolicyError` naming file:line key."""
    walk = Walker(source)
    root = compose(text, source)
    if root is None:
        raise PolicyError(source, 1, "(document)", "the cases file is empty")
    return [_case(walk, node, f"[{i}]") for i, node in enumerate(walk.sequence(root, ""))]


def _case(walk: Walker, node: yaml.Node, key: str) -> Case:
    fields = walk.mapping(node, key, _CASE_KEYS)
    for required in ("origin", "method", "path", "expect"):
        if required not in fields:
            raise walk.fail(node, f"{key}.{required}", "missing")

    def text(name: str) -> str:
        return walk.string(fields[name][1], f"{key}.{name}")

    expect_node = fields["expect"][1]
    expect = walk.string(expect_node, f"{key}.expect")
    if expect not in _EXPECT:
        raise walk.fail(
            expect_node, f"{key}.expect", f"expected allowed or refused, not {expect!r}"
        )
    path = text("path")
    if not path.startswith("/"):
        raise walk.fail(fields["path"][1], f"{key}.path", "a path starts with /")
    headers: list[tuple[str, str]] = []
    if "headers" in fields:
        for i, item in enumerate(walk.sequence(fields["headers"][1], f"{key}.headers")):
            name, _, value = walk.string(item, f"{key}.headers[{i}]").partition(":")
            headers.append((name.strip(), value.strip()))
    flags = {
        name: walk.boolean(fields[name][1], f"{key}.{name}") if name in fields else None
        for name in ("credentials", "reaches_upstream")
    }
    method = browser.normalize_method(text("method"))
    name = text("name") if "name" in fields else f"{method} {path} from {text('origin')}"
    return Case(
        name=name,
        line=node.start_mark.line + 1,
        origin=text("origin"),
        method=method,
        path=path,
        headers=tuple(headers),
        credentials=bool(flags["credentials"]),
        expect_allowed=expect == "allowed",
        reaches_upstream=flags["reaches_upstream"],
    )


def run_case(config: Config, case: Case) -> Outcome:
    """What a browser concludes about ``case`` with cors-edge in front (no server involved)."""
    # What fetch() sends: the fragment never leaves the browser, the query is not routed.
    raw_path = case.path.split("#", 1)[0].split("?", 1)[0]
    block = config.unmatched is Unmatched.BLOCK
    page = browser.page_headers(list(case.headers))
    if browser.needs_preflight(case.method, page):
        names = browser.unsafe_header_names(page)
        verdict = decide(
            config.routes,
            "OPTIONS",
            raw_path,
            [case.origin],
            request_method=case.method,
            request_headers=",".join(names) or None,
            block_unmatched=block,
        )
        # Forwarded preflights meet an app without Flask-CORS: 200, no CORS headers.
        status = verdict.status or 200
        check = browser.check_preflight(
            origin=case.origin,
            method=case.method,
            header_names=names,
            credentials=case.credentials,
            status=status,
            response_headers=verdict.headers,
        )
        if not check.ok:
            reason = f"preflight: {check.reason} ({verdict.reason}{_near_miss(case, verdict)})"
            return Outcome(False, _reaches(verdict), reason)
    verdict = decide(config.routes, case.method, raw_path, [case.origin], block_unmatched=block)
    check = browser.check_response(
        origin=case.origin, credentials=case.credentials, response_headers=verdict.headers
    )
    reason = check.reason or "the page can read the response"
    return Outcome(
        check.ok, _reaches(verdict), f"{reason} ({verdict.reason}{_near_miss(case, verdict)})"
    )


def _near_miss(case: Case, verdict: Verdict) -> str:
    """For a refused origin: the nearest allowed one and what differs (DESIGN, Debugging)."""
    route = verdict.route
    normalised = parse_origin(case.origin)
    if route is None or (normalised is not None and route.origins.allows(normalised)):
        return ""
    miss = nearest(case.origin, route.origin_sources)
    return f"; {miss.hint}" if miss is not None else ""


def _reaches(verdict: Verdict) -> bool:
    # enforce: shadow forwards everything; the verdict is what enforcing would do.
    shadow = verdict.route is not None and verdict.route.shadow
    return shadow or not verdict.answered_at_edge


def _verdict(case: Case, outcome: Outcome) -> tuple[bool, str]:
    got = "allowed" if outcome.allowed else "refused"
    want = "allowed" if case.expect_allowed else "refused"
    if outcome.allowed != case.expect_allowed:
        return False, f"expected {want}, got {got}: {outcome.reason}"
    if case.reaches_upstream is not None and case.reaches_upstream != outcome.reaches_upstream:
        said = "reaches" if outcome.reaches_upstream else "does not reach"
        return False, f"{got} as expected, but the request {said} the upstream"
    return True, got


def run_cases(config_path: str, cases_path: str, out: TextIO, err: TextIO) -> int:
    """``cors-edge test``: 0 when every case holds, 1 on a mismatch, 2 when it cannot run."""
    try:
        config = load_policy_file(config_path)
        raw = Path(cases_path).read_text(encoding="utf-8")
        cases = parse_cases(raw, cases_path)
    except PolicyError as error:
        print(f"{error}", file=err)
        return 2
    except (OSError, UnicodeDecodeError) as error:
        print(f"{cases_path}:0 (file): cannot read: {error}", file=err)
        return 2
    failed = 0
    for case in cases:
        ok, detail = _verdict(case, run_case(config, case))
        failed += not ok
        mark = "ok  " if ok else "FAIL"
        print(f"{mark} {cases_path}:{case.line} {case.name}: {detail}", file=out)
    print(f"{len(cases) - failed} passed, {failed} failed", file=out)
    return 1 if failed else 0
